/**
 * The golden answers (test/serve.golden.test.ts) served from a LanceDB store of the same vectors: the same bytes as
 * from the hnswlib bundle, explanations included.
 */
process.env.DRESSMATCH_TEST_STORE = 'lancedb';
await import('./serve.golden.test.ts');
