/**
 * apache-arrow as @lancedb/lancedb sees it. LanceDB's build is CommonJS and checks `instanceof arrow.Table`;
 * an ESM `import` of apache-arrow loads the package's separate ESM build, whose classes fail that check (LanceDB
 * then rebuilds the table and drops the schema metadata). Loading the CommonJS build here gives both one copy.
 */
import { createRequire } from 'node:module';

export const arrow = createRequire(import.meta.url)('apache-arrow') as typeof import('apache-arrow');
