// Entry of the model worker thread. Worker threads do not inherit the TypeScript loader the main thread was
// started with, so when the service runs from source (.ts) the loader is registered here before the worker
// module is imported.
import { workerData } from 'node:worker_threads';

if (workerData.entry.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(workerData.entry);
