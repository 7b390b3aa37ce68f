/**
 * The work behind `import-model` and `export` (weights.ts): file reading and writing here, the parsing, name
 * mapping and layout conversion in the model stage (safetensors.ts, torch-names.ts).
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadCatalogue } from '../catalogue/index.ts';
import { readCheckpoint, writeCheckpoint } from '../checkpoint/index.ts';
import {
  CSN_MASKS_NAME,
  CSN_NETWORK_PREFIX,
  ModelInputError,
  type ModelConfig,
  type TorchTensor,
} from '../model/index.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { createLogger } from '../util/log.ts';
import type { BackendPreference } from '../model/defaults.ts';

/** The flags of `import-model` and `export` (declared in weights.ts). */
export interface ImportModelFlags {
  weights: string;
  catalogue: string;
  out: string;
  masks: 'learned' | 'fixed';
  imageSize: number;
  backend: BackendPreference;
}

export interface ExportFlags {
  model: string;
  out: string;
}

async function readSafetensors(path: string): Promise<TorchTensor[]> {
  const { parseSafetensors } = await import('../model/index.ts');
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return parseSafetensors(bytes).tensors;
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`, { cause: error });
  }
}

function tensorShape(tensors: readonly TorchTensor[], name: string, file: string): number[] {
  const tensor = tensors.find((t) => t.name === name);
  if (!tensor) throw new ModelInputError(`${file} has no ${name}: not a state_dict of upstream's CSN`);
  return tensor.shape;
}

/** The model config an upstream CSN state dict describes (width, embedding size, conditions from the catalogue). */
function upstreamConfig(
  tensors: readonly TorchTensor[],
  conditions: string[],
  flags: ImportModelFlags,
): ModelConfig {
  const conv1 = tensorShape(tensors, `${CSN_NETWORK_PREFIX}conv1.weight`, flags.weights);
  const fc = tensorShape(tensors, `${CSN_NETWORK_PREFIX}fc_embed.weight`, flags.weights);
  const masks = tensorShape(tensors, CSN_MASKS_NAME, flags.weights);
  if (masks[0] !== conditions.length) {
    throw new ModelInputError(
      `${CSN_MASKS_NAME} has ${masks[0]} rows but ${flags.catalogue}/conditions.txt lists ${conditions.length} conditions (${conditions.join(', ')})`,
    );
  }
  return {
    kind: 'csn',
    backbone: 'resnet18',
    imageSize: flags.imageSize,
    embedDim: fc[0],
    conditions,
    maskMode: flags.masks,
    seed: 0,
    width: conv1[0],
    preprocess: 'resize-crop',
  };
}

export async function runImportModel(flags: ImportModelFlags): Promise<void> {
  const log = createLogger('import-model');
  const tensors = await readSafetensors(flags.weights);
  const catalogue = await loadCatalogue(flags.catalogue);
  const config = upstreamConfig(tensors, catalogue.conditions, flags);
  const { selectBackend, createModelFromTorch, upstreamCsnMapping } = await import('../model/index.ts');
  await selectBackend(flags.backend, log);
  const { model, report } = createModelFromTorch(config, tensors, upstreamCsnMapping);
  try {
    if (report.missing.length > 0 || report.unexpected.length > 0) {
      throw new ModelInputError(
        `${flags.weights} does not fit upstream's CSN: missing [${report.missing.join(', ')}], unexpected [${report.unexpected.join(', ')}]`,
      );
    }
    const path = join(flags.out, 'model_best.dmck');
    await writeCheckpoint(path, {
      model: model.snapshot(),
      args: { dataDir: resolve(flags.catalogue), importedFrom: resolve(flags.weights), masks: flags.masks },
    });
    log.info(
      {
        loaded: report.loaded.length,
        ignored: report.ignored.length,
        width: config.width,
        embedDim: config.embedDim,
      },
      `imported ${report.loaded.length} tensors (${report.ignored.length} counters ignored) into ${path}`,
    );
  } finally {
    model.dispose();
  }
}

export async function runExport(flags: ExportFlags): Promise<void> {
  const log = createLogger('export');
  const checkpoint = await readCheckpoint(flags.model);
  const { hasUpstreamNames, serializeSafetensors, toTorchTensors } = await import('../model/index.ts');
  const tensors = toTorchTensors(checkpoint.model);
  const config = checkpoint.model.config;
  // Metadata values must be strings in safetensors.
  const bytes = serializeSafetensors(tensors, {
    format: 'pt',
    source: 'dressmatch',
    config: JSON.stringify(config),
  });
  await writeFileAtomic(flags.out, bytes);
  const naming = hasUpstreamNames(checkpoint.model)
    ? 'upstream CSN names (PyTorch layouts)'
    : 'our own weight names (tfjs layouts)';
  log.info(
    { tensors: tensors.length, bytes: bytes.length },
    `wrote ${tensors.length} tensors under ${naming} to ${flags.out}`,
  );
}
