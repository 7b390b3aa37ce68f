/**
 * `train --init-weights FILE.safetensors`: a new model whose backbone starts from torchvision resnet18 weights
 * (names such as conv1.weight, bn1.running_mean, layer1.0.conv1.weight; PyTorch layouts converted by the model
 * stage). layer4.* and fc.* are not part of upstream CSN's network and are skipped with a note; what was loaded,
 * missing and unexpected is logged; a shape mismatch is an error naming the tensor.
 */
import { readFile } from 'node:fs/promises';
import type { ModelConfig, SimilarityModel, TorchLoadReport } from '../model/index.ts';
import type { Logger } from '../util/log.ts';
import { OptionsError } from './options.ts';

export async function modelFromInitWeights(
  config: ModelConfig,
  file: string,
  log: Logger,
): Promise<{ model: SimilarityModel; report: TorchLoadReport }> {
  const { parseSafetensors, createModelFromTorch, torchvisionMapping } = await import('../model/index.ts');
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new OptionsError(`--init-weights ${file}: ${(error as Error).message}`);
  }
  let result: { model: SimilarityModel; report: TorchLoadReport };
  try {
    result = createModelFromTorch(config, parseSafetensors(bytes).tensors, torchvisionMapping);
  } catch (error) {
    throw new OptionsError(`--init-weights ${file}: ${(error as Error).message}`);
  }
  const { model, report } = result;
  if (report.loaded.length === 0) {
    model.dispose();
    throw new OptionsError(
      `--init-weights ${file}: no tensor fits the ${config.backbone} backbone (torchvision resnet18 names are expected, for --backbone resnet18)`,
    );
  }
  const skipped = report.ignored.filter((name) => !name.endsWith('.num_batches_tracked'));
  log.info(
    {
      loaded: report.loaded.length,
      missing: report.missing,
      unexpected: report.unexpected,
      ignored: skipped.length,
    },
    `--init-weights: loaded ${report.loaded.length} tensors, missing ${report.missing.length}` +
      (report.missing.length ? ` [${report.missing.join(', ')}]` : '') +
      `, unexpected ${report.unexpected.length}` +
      (report.unexpected.length ? ` [${report.unexpected.join(', ')}]` : '') +
      (skipped.length
        ? `; ignored ${skipped.length} layer4/fc tensors (upstream CSN stops after layer3)`
        : ''),
  );
  return result;
}
