/**
 * One refresh run: lock the bundle, read what is served and what the catalogue is now, report the changes, decide,
 * then do nothing, re-index incrementally, or fine-tune, gate and publish. Every outcome ends in the run report and
 * one exit code (types.ts). Whatever happens (an error, the gate, `kill -9`), the served version only changes by
 * the index stage's atomic manifest switch.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CatalogueError,
  ConditionError,
  ImageDecodeError,
  loadCatalogue,
  resolveConditions,
  type Catalogue,
} from '../catalogue/index.ts';
import { CheckpointError } from '../checkpoint/index.ts';
import {
  BundleError,
  openBundle,
  removeLeftovers,
  type BuildReport,
  type IndexBundle,
  type IndexedProduct,
} from '../index/index.ts';
import { selectBackend } from '../model/index.ts';
import { OptionsError } from '../train/index.ts';
import type { Logger } from '../util/log.ts';
import { compareCatalogue, describeChanges } from './changes.ts';
import { decide } from './decision.ts';
import { formatGate } from './gate.ts';
import {
  checkDecodes,
  fingerprintCatalogue,
  servedModel,
  warmStartSource,
  type ModelFile,
} from './inputs.ts';
import { acquireRefreshLock, type RefreshLock } from './lock.ts';
import { REFRESH_DEFAULTS } from './options.ts';
import { publish } from './publish.ts';
import { markAbandoned, newReport, ReportWriter } from './report.ts';
import { fineTune, judge, type TrainFlags } from './retrain.ts';
import {
  REFRESH_EXIT,
  RefreshError,
  type RefreshExitCode,
  type RefreshOutcome,
  type RefreshReport,
} from './types.ts';

export interface RefreshOptions {
  dataDir: string;
  indexDir: string;
  /** true: always retrain; false: only re-index; undefined: the decision rule. */
  retrain?: boolean;
  /** Warm-start checkpoint (default: the served model). */
  from?: string;
  tolerance: number;
  retrainShare: number;
  dryRun: boolean;
  /** The run folder is {logDir}/{name} (the trainer's --log-dir and --name). */
  logDir: string;
  name: string;
  /** The trainer's flags for the fine-tune, and whether each was given on the command line. */
  trainFlags: TrainFlags;
  explicit: (key: string) => boolean;
  log: Logger;
  out: NodeJS.WritableStream | null;
  signal?: AbortSignal;
  lockStaleMs?: number;
}

export interface RefreshResult {
  exitCode: RefreshExitCode;
  report: RefreshReport;
  runDir: string;
}

/** What the steps share. */
interface Context {
  options: RefreshOptions;
  writer: ReportWriter;
  lock: RefreshLock;
  say: (text: string) => void;
}

/** The exit code of anything thrown: RefreshError says, known input errors are bad input, the rest is an error. */
export function exitCodeOf(error: unknown): RefreshExitCode {
  if (error instanceof RefreshError) return error.exitCode;
  if (error instanceof BundleError && error.code === 'locked') return REFRESH_EXIT.busy;
  const input =
    (error instanceof BundleError && error.code === 'not-found') ||
    error instanceof CatalogueError ||
    error instanceof CheckpointError ||
    error instanceof ConditionError ||
    error instanceof OptionsError ||
    error instanceof ImageDecodeError;
  return input ? REFRESH_EXIT.badInput : REFRESH_EXIT.error;
}

export async function runRefresh(options: RefreshOptions): Promise<RefreshResult> {
  const runDir = join(options.logDir, options.name);
  const writer = new ReportWriter(
    runDir,
    newReport({
      run: options.name,
      bundle: options.indexDir,
      dataDir: options.dataDir,
      dryRun: options.dryRun,
    }),
  );
  const say = (text: string) => options.out?.write(`${text}\n`);
  let lock: RefreshLock | undefined;
  try {
    if (existsSync(join(runDir, REFRESH_DEFAULTS.reportFile))) {
      throw new RefreshError(
        REFRESH_EXIT.badInput,
        `run folder ${runDir} already holds a refresh: choose another --name`,
      );
    }
    await mkdir(runDir, { recursive: true });
    lock = await acquireRefreshLock(options.indexDir, options.lockStaleMs);
    await writer.save();
    const abandoned = await markAbandoned(options.logDir, options.indexDir, options.name);
    const leftovers = await removeLeftovers(options.indexDir, options.lockStaleMs);
    if (leftovers.length > 0)
      options.log.info({ removed: leftovers }, 'removed leftovers of killed index jobs');
    if (abandoned.length > 0)
      options.log.warn({ runs: abandoned }, 'earlier refresh runs were killed: marked abandoned');
    const outcome = await steps({ options, writer, lock, say });
    await writer.finish(outcome, REFRESH_EXIT.ok);
    return { exitCode: REFRESH_EXIT.ok, report: writer.report, runDir };
  } catch (error) {
    const exitCode = exitCodeOf(error);
    const message = error instanceof Error ? error.message : String(error);
    writer.report.error = {
      code: exitCode,
      message,
      ...(error instanceof RefreshError && error.products ? { products: error.products } : {}),
    };
    if (exitCode === REFRESH_EXIT.error) options.log.error({ err: error }, 'refresh failed');
    await writer
      .finish(exitCode === REFRESH_EXIT.refused ? 'refused' : 'failed', exitCode)
      .catch(() => undefined);
    return { exitCode, report: writer.report, runDir };
  } finally {
    await lock?.release();
  }
}

/** Read, compare, decide; then the chosen path. Returns the outcome of a run that did not fail. */
async function steps(ctx: Context): Promise<RefreshOutcome> {
  const { options, writer } = ctx;
  const report = writer.report;
  const served = await writer.time('read-served', () => openBundle(options.indexDir));
  try {
    report.served = { version: served.version, modelId: served.modelId };
    const catalogue = await writer.time('read-catalogue', () => loadCatalogue(options.dataDir));
    const products = await writer.time('fingerprint', () => fingerprintCatalogue(catalogue));
    const target = options.trainFlags.conditions
      ? resolveConditions(options.trainFlags.conditions, catalogue.conditions)
      : catalogue.conditions;
    const live = served.products.filter((p): p is IndexedProduct => p !== null);
    report.changes = compareCatalogue(
      { version: served.version, conditions: served.conditions, products: live },
      { conditions: catalogue.conditions, products, target },
    );
    ctx.say(describeChanges(report.changes));
    report.decision = decide(report.changes, {
      retrain: options.retrain,
      retrainShare: options.retrainShare,
    });
    ctx.say(`decision: ${report.decision.action} (${report.decision.reasons.join('; ')})`);
    await writer.save();
    if (options.dryRun) return 'dry-run';
    if (report.decision.action === 'nothing') return 'nothing-to-do';

    const model = await servedModel(served, options.from);
    await selectBackend(options.trainFlags.backend, options.log);
    const touched = [...report.changes.added, ...report.changes.changed.map((c) => c.id)];
    await writer.time('check-images', () =>
      checkDecodes(catalogue, touched, model.checkpoint.model.config.imageSize),
    );
    const published =
      report.decision.action === 'reindex'
        ? await reindex(ctx, served, catalogue, products, model)
        : await retrain(ctx, served, catalogue, products, model, target);
    report.published = {
      version: published.version!,
      mode: published.mode,
      modelId: report.candidate?.modelId ?? model.checkpoint.modelId!,
    };
    ctx.say(`published version ${published.version} (${published.mode})`);
    return 'published';
  } finally {
    served.close();
  }
}

function assertLock(ctx: Context): () => void {
  return () => {
    const lost = ctx.lock.compromised;
    if (lost)
      throw new RefreshError(
        REFRESH_EXIT.error,
        `lost the refresh lock (${lost.message}): nothing published`,
      );
  };
}

/** Only products changed and the model still fits: embed them with the served model. */
async function reindex(
  ctx: Context,
  served: IndexBundle,
  catalogue: Catalogue,
  products: IndexedProduct[],
  model: ModelFile,
): Promise<BuildReport> {
  const previous = served.info.provenance;
  return ctx.writer.time('publish', () =>
    publish({
      indexDir: ctx.options.indexDir,
      served,
      catalogue,
      products,
      model,
      incremental: true,
      provenance: {
        trainedAt: previous?.trainedAt ?? model.checkpoint.createdAt ?? null,
        testAccuracy: previous?.testAccuracy ?? null,
        refresh: ctx.options.name,
      },
      log: ctx.options.log,
      assertLockHeld: assertLock(ctx),
    }),
  );
}

/** Fine-tune from the served model, gate against it, and publish the candidate with a full re-index. */
async function retrain(
  ctx: Context,
  served: IndexBundle,
  catalogue: Catalogue,
  products: IndexedProduct[],
  model: ModelFile,
  target: readonly string[],
): Promise<BuildReport> {
  const { options, writer } = ctx;
  const report = writer.report;
  const from = await warmStartSource(model, options.from);
  const tuned = await writer.time('fine-tune', () =>
    fineTune({
      logDir: options.logDir,
      name: options.name,
      dataDir: options.dataDir,
      conditions: target,
      from,
      flags: options.trainFlags,
      explicit: options.explicit,
      log: options.log,
      out: options.out,
      signal: options.signal,
    }),
  );
  const { kept, added, dropped } = tuned.warm;
  report.warmStart = { from: from.path, modelId: from.checkpoint.modelId!, kept, added, dropped };
  ctx.say(
    `warm-started from ${from.path}: ${kept.length} condition(s) kept` +
      (added.length > 0 ? `, fresh mask for ${added.join(', ')}` : '') +
      (dropped.length > 0 ? `, dropped ${dropped.join(', ')}` : ''),
  );
  report.candidate = {
    modelId: tuned.candidate.modelId!,
    checkpoint: tuned.candidatePath,
    epochs: tuned.options.epochs,
    testAccuracy: null,
  };
  const { scores, gate } = await writer.time('gate', () => judge(catalogue, tuned, model, options.tolerance));
  report.gate = gate;
  report.candidate.testAccuracy = scores.candidate.overall;
  await writer.save();
  ctx.say(formatGate(gate));
  if (!gate.passed) {
    throw new RefreshError(
      REFRESH_EXIT.refused,
      `the candidate was refused by the gate (${gate.failures.join('; ')}); version ${served.version} stays served`,
    );
  }
  return writer.time('publish', () =>
    publish({
      indexDir: options.indexDir,
      served,
      catalogue,
      products,
      model: { path: tuned.candidatePath, checkpoint: tuned.candidate },
      incremental: false,
      provenance: {
        trainedAt: tuned.candidate.createdAt ?? null,
        testAccuracy: scores.candidate.overall,
        refresh: options.name,
      },
      log: options.log,
      assertLockHeld: assertLock(ctx),
    }),
  );
}
