/**
 * Weights in and out as safetensors: `import-model` turns a CSN trained by the official PyTorch code into a run
 * folder that eval, index and serve use as they are; `export` writes a checkpoint's weights for PyTorch. The work
 * loads inside the actions so that `--help` stays fast (weights-run.ts).
 */
import { Option, type Command } from 'commander';
import { BACKEND_PREFERENCES } from '../model/defaults.ts';
import { integer, runCommand } from '../util/cli.ts';
import type { ExportFlags, ImportModelFlags } from './weights-run.ts';

/** Upstream CSN's input side (transforms.Scale(112) + CenterCrop(112)). */
const UPSTREAM_IMAGE_SIZE = 112;

export function registerWeightCommands(program: Command): void {
  program
    .command('import-model')
    .description(
      'Turn a CSN trained with the official PyTorch code (its state_dict as safetensors) into a run folder',
    )
    .requiredOption('--weights <file>', 'safetensors file with the state_dict under upstream names')
    .requiredOption(
      '--catalogue <dir>',
      "catalogue whose conditions.txt lists the conditions in the mask rows' order",
    )
    .requiredOption('--out <dir>', 'run folder to write (model_best.dmck)')
    .addOption(
      new Option(
        '--masks <mode>',
        'learned: ReLU(mask) as upstream; fixed: upstream --learned false (0/1 masks as stored)',
      )
        .choices(['learned', 'fixed'])
        .default('learned'),
    )
    .option(
      '--image-size <px>',
      'input side the network was trained at',
      integer('--image-size', 17),
      UPSTREAM_IMAGE_SIZE,
    )
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(BACKEND_PREFERENCES).default('auto'))
    .action((flags: ImportModelFlags, command: Command) =>
      runCommand(command, async () => {
        const { runImportModel } = await import('./weights-run.ts');
        await runImportModel(flags);
      }),
    );

  program
    .command('export')
    .description("Write a checkpoint's weights as safetensors (upstream names and layouts for resnet18 CSNs)")
    .requiredOption('--model <checkpoint>', 'checkpoint file (.dmck)')
    .requiredOption('--out <file>', 'safetensors file to write')
    .action((flags: ExportFlags, command: Command) =>
      runCommand(command, async () => {
        const { runExport } = await import('./weights-run.ts');
        await runExport(flags);
      }),
    );
}
