// Entry of a worker thread whose module may be TypeScript. Worker threads do not inherit the loader the main
// thread was started with, so when running from source (.ts) tsx is registered here before the module is imported.
import { workerData } from 'node:worker_threads';

if (workerData.entry.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(workerData.entry);
