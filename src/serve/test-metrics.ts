/**
 * How well the served model did on the test split, per condition: triplet accuracy and retrieval MAP from the
 * training run's `test_results.json` beside the checkpoint (written by the trainer's final test, for the model
 * with that id), else the accuracy the checkpoint's own metrics record; null where neither says.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readCheckpoint } from '../checkpoint/index.ts';

export interface ConditionTestMetrics {
  testAccuracy: number | null;
  testMap: number | null;
}

/** The part of test_results.json read here (src/eval/report.ts: EvaluationReport). */
interface TestResults {
  model?: { id?: string };
  triplets?: { perCondition?: Record<string, { accuracy?: number }> };
  retrieval?: { perCondition?: Record<string, { map?: number }> };
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

async function readTestResults(checkpoint: string, modelId: string): Promise<TestResults | undefined> {
  try {
    // The trainer names its files; imported only here, when there is a checkpoint to look beside.
    const { RUN_FILES } = await import('../train/index.ts');
    const text = await readFile(join(dirname(checkpoint), RUN_FILES.testResults), 'utf8');
    const results = JSON.parse(text) as TestResults;
    return results.model?.id === modelId ? results : undefined;
  } catch {
    return undefined;
  }
}

async function checkpointAccuracy(checkpoint: string): Promise<Record<string, { accuracy?: number }>> {
  try {
    return (await readCheckpoint(checkpoint)).metrics?.test?.perCondition ?? {};
  } catch {
    return {};
  }
}

/** Per condition, in the order given; all null without a checkpoint. */
export async function readTestMetrics(
  checkpoint: string | undefined,
  modelId: string,
  conditions: readonly string[],
): Promise<ConditionTestMetrics[]> {
  if (!checkpoint) return conditions.map(() => ({ testAccuracy: null, testMap: null }));
  const results = await readTestResults(checkpoint, modelId);
  const accuracy = results?.triplets?.perCondition ?? (await checkpointAccuracy(checkpoint));
  return conditions.map((condition) => ({
    testAccuracy: numberOrNull(accuracy[condition]?.accuracy),
    testMap: numberOrNull(results?.retrieval?.perCondition?.[condition]?.map),
  }));
}
