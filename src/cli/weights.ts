/**
 * Weights in and out as safetensors: `import-model` turns a CSN trained by the official PyTorch code into a run
 * folder that eval, index and serve use as they are; `export` writes a checkpoint's weights for PyTorch. The work
 * loads inside the actions so that `--help` stays fast (weights-run.ts).
 */
import type { Command } from 'commander';
import { BACKEND_OPTION } from '../model/defaults.ts';
import { runCommand } from '../util/cli.ts';
import { addOptions, type OptionTable, type ValuesOf } from '../util/options-table.ts';

/** Upstream CSN's input side (transforms.Scale(112) + CenterCrop(112)). */
const UPSTREAM_IMAGE_SIZE = 112;

/** `import-model`'s flags. */
export const IMPORT_MODEL_OPTIONS = {
  weights: {
    type: 'string',
    arg: 'file',
    help: 'safetensors file with the state_dict under upstream names',
    required: true,
  },
  catalogue: {
    type: 'string',
    arg: 'dir',
    help: "catalogue whose conditions.txt lists the conditions in the mask rows' order",
    required: true,
  },
  out: { type: 'string', arg: 'dir', help: 'run folder to write (model_best.dmck)', required: true },
  masks: {
    type: 'choice',
    arg: 'mode',
    choices: ['learned', 'fixed'] as const,
    help: 'learned: ReLU(mask) as upstream; fixed: upstream --learned false (0/1 masks as stored)',
    default: 'learned' as 'learned' | 'fixed',
  },
  imageSize: {
    type: 'integer',
    arg: 'px',
    min: 17,
    help: 'input side the network was trained at',
    default: UPSTREAM_IMAGE_SIZE,
  },
  backend: BACKEND_OPTION,
} satisfies OptionTable;

/** `export`'s flags. */
export const EXPORT_OPTIONS = {
  model: { type: 'string', arg: 'checkpoint', help: 'checkpoint file (.dmck)', required: true },
  out: { type: 'string', arg: 'file', help: 'safetensors file to write', required: true },
} satisfies OptionTable;

export function registerWeightCommands(program: Command): void {
  const importModel = program
    .command('import-model')
    .description(
      'Turn a CSN trained with the official PyTorch code (its state_dict as safetensors) into a run folder',
    );
  addOptions(importModel, IMPORT_MODEL_OPTIONS).action(
    (flags: ValuesOf<typeof IMPORT_MODEL_OPTIONS>, command: Command) =>
      runCommand(command, async () => {
        const { runImportModel } = await import('./weights-run.ts');
        await runImportModel(flags);
      }),
  );

  const exportCommand = program
    .command('export')
    .description(
      "Write a checkpoint's weights as safetensors (upstream names and layouts for resnet18 CSNs)",
    );
  addOptions(exportCommand, EXPORT_OPTIONS).action(
    (flags: ValuesOf<typeof EXPORT_OPTIONS>, command: Command) =>
      runCommand(command, async () => {
        const { runExport } = await import('./weights-run.ts');
        await runExport(flags);
      }),
  );
}
