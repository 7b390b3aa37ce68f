/** Which command's option table goes into which README (scripts/options-readme.ts renders and checks them). */
import { DEMO_DATA_OPTIONS, IMPORT_OPTIONS, INFO_OPTIONS } from '../src/catalogue/cli.ts';
import { DEMO_OPTIONS } from '../src/cli/demo.ts';
import { EXPORT_OPTIONS, IMPORT_MODEL_OPTIONS } from '../src/cli/weights.ts';
import { EVAL_OPTIONS } from '../src/eval/cli.ts';
import { INDEX_INFO_OPTIONS, INDEX_OPTIONS, INDEX_QUERY_OPTIONS } from '../src/index/cli.ts';
import { FINE_TUNE_OPTIONS } from '../src/refresh/fine-tune-flags.ts';
import { REFRESH_OPTIONS } from '../src/refresh/options.ts';
import { TRAIN_OPTIONS } from '../src/train/options.ts';
import type { OptionTable, ReadmeColumns } from '../src/util/options-table.ts';

export interface FlagTable {
  readme: string;
  /** The section name: the table sits between `<!-- options:NAME -->` and `<!-- /options:NAME -->`. */
  name: string;
  table: OptionTable;
  columns?: ReadmeColumns;
}

export const FLAG_TABLES: FlagTable[] = [
  {
    readme: 'src/train/README.md',
    name: 'train',
    table: TRAIN_OPTIONS,
    columns: { upstream: true, inherit: true },
  },
  { readme: 'src/train/README.md', name: 'eval', table: EVAL_OPTIONS },
  { readme: 'src/index/README.md', name: 'index', table: INDEX_OPTIONS },
  { readme: 'src/index/README.md', name: 'index-info', table: INDEX_INFO_OPTIONS },
  { readme: 'src/index/README.md', name: 'index-query', table: INDEX_QUERY_OPTIONS },
  { readme: 'src/catalogue/README.md', name: 'demo-data', table: DEMO_DATA_OPTIONS },
  { readme: 'src/catalogue/README.md', name: 'import', table: IMPORT_OPTIONS },
  { readme: 'src/catalogue/README.md', name: 'catalogue-info', table: INFO_OPTIONS },
  { readme: 'src/cli/README.md', name: 'demo', table: DEMO_OPTIONS },
  { readme: 'src/cli/README.md', name: 'import-model', table: IMPORT_MODEL_OPTIONS },
  { readme: 'src/cli/README.md', name: 'export', table: EXPORT_OPTIONS },
  { readme: 'src/refresh/README.md', name: 'refresh', table: REFRESH_OPTIONS },
  { readme: 'src/refresh/README.md', name: 'refresh-fine-tune', table: FINE_TUNE_OPTIONS },
];
