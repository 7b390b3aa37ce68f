/**
 * The filter, combined-condition and recommend suite (test/serve.filters.test.ts) once more, served from a LanceDB
 * store holding the same vectors: filters run as LanceDB prefilters, and every ranking must equal brute force over
 * the bundle's vectors, exactly as on the hnswlib store.
 */
process.env.DRESSMATCH_TEST_STORE = 'lancedb';
await import('./serve.filters.test.ts');
