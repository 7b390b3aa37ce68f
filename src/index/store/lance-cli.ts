/**
 * The `index --store lancedb` job: a full build, one shard of a sharded embedding (`--shard i/n`), or the commit
 * that checks every shard and publishes (`--commit`). The model, catalogue and progress bars come from the shared
 * index command (src/index/cli.ts); this file only picks what to run and describes the result.
 */
import type { Catalogue } from '../../catalogue/index.ts';
import { IndexQualityError, type BundleSource } from '../types.ts';
import { buildLanceStore, type LanceBuildOptions, type LanceBuildReport } from './lance-build.ts';
import { commitShards, embedShard, parseShard } from './lance-shards.ts';
import type { StoreFieldType, StoreFieldValue, StoreProduct } from './types.ts';

export interface LanceJobFlags {
  /** The LanceDB database (the command checked it was given). */
  uri: string;
  shard?: string;
  commit?: boolean;
}

/** The source's products with the catalogue's filterable fields attached (when the catalogue has any). */
function withFields(
  source: BundleSource,
  catalogue: Catalogue,
): {
  products: StoreProduct[];
  fields: Record<string, StoreFieldType>;
} {
  const fieldsOf = new Map<string, Record<string, StoreFieldValue>>();
  for (const product of catalogue.products) {
    const fields = (product as { fields?: Record<string, StoreFieldValue> }).fields;
    if (fields) fieldsOf.set(product.id, fields);
  }
  const products = source.products.map((p) => {
    const fields = fieldsOf.get(p.id);
    return fields ? { ...p, fields } : p;
  });
  return { products, fields: (catalogue as { fields?: Record<string, StoreFieldType> }).fields ?? {} };
}

function describe(
  report: LanceBuildReport & { shards?: number },
  table: (r: LanceBuildReport) => string,
): string {
  const from = report.shards ? ` from ${report.shards} shards` : '';
  const timing = Object.entries(report.timings)
    .map(([stage, s]) => `${stage} ${s}s`)
    .join(', ');
  const old = [...report.removedTables, ...report.removedBundleVersions.map((v) => `bundle ${v}`)];
  const removed = old.length > 0 ? `\nremoved old versions: ${old.join(', ')}` : '';
  return `published LanceDB version ${report.version}${from}: ${report.rows} products, HNSW bundle in ${report.bundle}\n\n${table(report)}\n\ntime: ${timing}${removed}`;
}

/** Run the LanceDB job the flags ask for; returns what to print. Quality-gate failures print their table too. */
export async function runLanceJob(
  flags: LanceJobFlags,
  source: BundleSource,
  catalogue: Catalogue,
  options: LanceBuildOptions,
  table: (report: { quality: LanceBuildReport['quality'] }) => string,
): Promise<{ text: string; report: unknown }> {
  if (flags.shard && flags.commit)
    throw new Error('--shard embeds one share and --commit publishes them: use one');
  if (flags.shard) {
    const spec = parseShard(flags.shard);
    const written = await embedShard(flags.uri, source, spec, options);
    const text = `embedded shard ${spec.shard}/${spec.of}: ${written.rows} products staged in ${written.table} (run --commit once every shard is done)`;
    return { text, report: { ...written, shard: spec } };
  }
  const { products, fields } = withFields(source, catalogue);
  try {
    const report = flags.commit
      ? await commitShards(flags.uri, source, { ...options, products, fields })
      : await buildLanceStore(flags.uri, source, { ...options, products, fields });
    return { text: describe(report, table), report };
  } catch (error) {
    if (error instanceof IndexQualityError) process.stdout.write(`${table(error)}\n`);
    throw error;
  }
}
