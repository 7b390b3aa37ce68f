/**
 * One refresh run: lock the bundle, read what is served and what the catalogue is now, report the changes, decide;
 * then publish the catalogue as it is now with the served model, and when retraining, fine-tune, gate and publish
 * the new model. Every outcome ends in the run report and one exit code (types.ts). Whatever happens (an error,
 * the gate, `kill -9`), the served version only changes by the index stage's atomic manifest switch, and a
 * fine-tune that fails or is refused leaves the catalogue's version served.
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
  type IndexBundle,
  type IndexedProduct,
} from '../index/index.ts';
import { selectBackend } from '../model/index.ts';
import { OptionsError, TRAIN_DEFAULTS, TrainingDivergedError } from '../train/index.ts';
import type { Logger } from '../util/log.ts';
import { compareCatalogue, describeChanges, labelsOf } from './changes.ts';
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
import { fineTune, judge, type FineTuned, type FineTuneSettings } from './retrain.ts';
import {
  REFRESH_EXIT,
  RefreshError,
  type ChangeReport,
  type RefreshExitCode,
  type RefreshOutcome,
  type RefreshProvenance,
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
  /** Test triplets both models answer at the gate. */
  gateTriplets: number;
  /** Trainer settings given for the fine-tune (the others: the served model's run, then the trainer's defaults). */
  fineTune: FineTuneSettings;
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

/** Read, compare, decide; then follow the catalogue with the served model and, when retraining, fine-tune and gate. */
async function steps(ctx: Context): Promise<RefreshOutcome> {
  const { options, writer } = ctx;
  const report = writer.report;
  const served = await writer.time('read-served', () => openBundle(options.indexDir));
  try {
    report.served = { version: served.version, modelId: served.modelId };
    const catalogue = await writer.time('read-catalogue', () => loadCatalogue(options.dataDir));
    const products = await writer.time('fingerprint', () => fingerprintCatalogue(catalogue));
    const target = options.fineTune.conditions
      ? resolveConditions(options.fineTune.conditions, catalogue.conditions)
      : catalogue.conditions;
    const live = served.products.filter((p): p is IndexedProduct => p !== null);
    const labelsSeen = provenanceOf(served)?.labelsSeen;
    report.changes = compareCatalogue(
      { version: served.version, conditions: served.conditions, products: live, labelsSeen },
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
    await selectBackend(options.fineTune.backend ?? TRAIN_DEFAULTS.backend, options.log);
    const touched = [...report.changes.added, ...report.changes.changed.map((c) => c.id)];
    await writer.time('check-images', () =>
      checkDecodes(catalogue, touched, model.checkpoint.model.config.imageSize),
    );
    await followCatalogue(ctx, served, catalogue, products, model);
    if (report.decision.action === 'retrain') await retrain(ctx, served, catalogue, products, model, target);
    return report.published ? 'published' : 'nothing-to-do';
  } finally {
    served.close();
  }
}

/** The served version's provenance, with what refresh records beside the index stage's fields. */
function provenanceOf(served: IndexBundle): RefreshProvenance | null {
  return (served.info.provenance ?? null) as RefreshProvenance | null;
}

function assertLock(ctx: Context): () => void {
  return () => {
    const lost = ctx.lock.compromised;
    if (lost)
      throw new RefreshError(
        REFRESH_EXIT.error,
        `lost the refresh lock (${lost.message}): nothing more is published`,
      );
  };
}

/** True when products or conditions differ from the served version (then the catalogue must be re-published). */
function catalogueChanged(changes: ChangeReport): boolean {
  const touched = changes.added.length + changes.removed.length + changes.changed.length;
  return touched > 0 || changes.conditionsRemoved.length > 0;
}

/**
 * Publish the catalogue as it is now with the served model, before any fine-tune: removed products gone, added
 * and changed ones embedded (incremental), conditions the catalogue dropped left out. A condition the model has no
 * mask for cannot be served yet; the others are.
 */
async function followCatalogue(
  ctx: Context,
  served: IndexBundle,
  catalogue: Catalogue,
  products: IndexedProduct[],
  model: ModelFile,
): Promise<void> {
  const report = ctx.writer.report;
  const known = model.checkpoint.model.config.conditions;
  const conditions = known.filter((c) => catalogue.conditions.includes(c));
  const notServable = catalogue.conditions.filter((c) => !known.includes(c));
  if (notServable.length > 0)
    ctx.say(
      `not servable until a model has learned it: ${notServable.join(', ')} (no mask in the served model)`,
    );
  if (!catalogueChanged(report.changes!)) {
    ctx.say(`catalogue unchanged: version ${served.version} stays served`);
    return;
  }
  if (conditions.length === 0) {
    ctx.say('no condition of the catalogue is known to the served model: nothing to re-index with it');
    return;
  }
  const previous = provenanceOf(served);
  const live = served.products.filter((p): p is IndexedProduct => p !== null);
  const built = await ctx.writer.time('reindex', () =>
    publish({
      indexDir: ctx.options.indexDir,
      served,
      catalogue,
      products,
      model,
      conditions,
      incremental: true,
      provenance: {
        trainedAt: previous?.trainedAt ?? model.checkpoint.createdAt ?? null,
        testAccuracy: previous?.testAccuracy ?? null,
        refresh: ctx.options.name,
        labelsSeen: previous?.labelsSeen ?? labelsOf(live, known),
      },
      log: ctx.options.log,
      assertLockHeld: assertLock(ctx),
    }),
  );
  if (!built.version) return;
  const modelId = model.checkpoint.modelId!;
  report.reindexed = { version: built.version, mode: built.mode, modelId, conditions, notServable };
  report.published = { version: built.version, mode: built.mode, modelId };
  await ctx.writer.save();
  ctx.say(
    `published version ${built.version} with the served model (${built.mode}): the catalogue as it is now`,
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
): Promise<void> {
  const { options, writer } = ctx;
  const report = writer.report;
  const from = await warmStartSource(model, options.from);
  const tuned = await writer
    .time('fine-tune', () =>
      fineTune({
        logDir: options.logDir,
        name: options.name,
        dataDir: options.dataDir,
        conditions: target,
        from,
        given: options.fineTune,
        log: options.log,
        out: options.out,
        signal: options.signal,
      }),
    )
    .catch((error: unknown) => {
      if (error instanceof TrainingDivergedError)
        refuse(ctx, served, `the fine-tune diverged: ${error.message}`);
      throw error;
    });
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
  const gate = await writer.time('gate', () =>
    judge(catalogue, tuned, model, { tolerance: options.tolerance, gateTriplets: options.gateTriplets }),
  );
  report.gate = gate;
  report.candidate.testAccuracy = gate.overall.triplets > 0 ? gate.overall.candidate : null;
  await writer.save();
  ctx.say(formatGate(gate));
  if (!gate.passed) refuse(ctx, served, `the gate refused it (${gate.failures.join('; ')})`);
  await publishCandidate(ctx, served, catalogue, products, tuned);
}

/** Stop with exit code 3: the new model is refused, the version this run re-indexed (or the one before) stays. */
function refuse(ctx: Context, served: IndexBundle, why: string): never {
  const reindexed = ctx.writer.report.reindexed;
  const stays = reindexed
    ? `version ${reindexed.version} (the catalogue as it is now, with the served model) is served`
    : `version ${served.version} stays served`;
  throw new RefreshError(REFRESH_EXIT.refused, `the new model was refused: ${why}; ${stays}`);
}

/** The accepted candidate, fully re-indexed (unless it is the very model the re-indexed version already serves). */
async function publishCandidate(
  ctx: Context,
  served: IndexBundle,
  catalogue: Catalogue,
  products: IndexedProduct[],
  tuned: FineTuned,
): Promise<void> {
  const { options, writer } = ctx;
  const report = writer.report;
  const modelId = tuned.candidate.modelId!;
  const current = report.reindexed ?? { modelId: served.modelId, conditions: served.conditions };
  if (
    modelId === current.modelId &&
    tuned.candidate.model.config.conditions.every((c) => current.conditions.includes(c))
  ) {
    ctx.say('the candidate is the model already served: nothing more to publish');
    return;
  }
  const built = await writer.time('publish', () =>
    publish({
      indexDir: options.indexDir,
      served,
      catalogue,
      products,
      model: { path: tuned.candidatePath, checkpoint: tuned.candidate },
      conditions: tuned.candidate.model.config.conditions,
      incremental: false,
      provenance: {
        trainedAt: tuned.candidate.createdAt ?? null,
        testAccuracy: report.candidate?.testAccuracy ?? null,
        refresh: options.name,
        labelsSeen: labelsOf(products, tuned.candidate.model.config.conditions),
      },
      log: options.log,
      assertLockHeld: assertLock(ctx),
    }),
  );
  report.published = { version: built.version!, mode: built.mode, modelId };
  ctx.say(`published version ${built.version} with the new model (${built.mode})`);
}
