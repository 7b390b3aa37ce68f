/**
 * Bootstrap of one wasm pthread in Node (see wasm-threads.ts). The tfjs wasm backend ships an emscripten worker
 * script and hands it to `new Worker` as a blob: URL, which Node's worker_threads cannot load, and it sends the
 * main script as a Blob, which the worker reads with a synchronous file read. This file runs that same worker
 * script and points it at the threaded module's file on disk instead of the Blob.
 */
'use strict';
/* global require, __filename, __dirname */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS worker script: require is how it loads */
const {
  wasmWorkerContents,
} = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js');
const mainScript =
  require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');

// The worker script is written for a global scope with `require` (emscripten's Node branch).
Object.assign(globalThis, { require, __filename, __dirname });
// The exported text lost its escapes ("\n" became a newline): restore them as tfjs does before making a Blob.
(0, eval)(wasmWorkerContents.replace(/\n/g, '\\n'));
const original = globalThis.onmessage;
globalThis.onmessage = (event) => {
  if (event && event.data && event.data.cmd === 'load') event.data.urlOrBlob = mainScript;
  return original(event);
};
