/**
 * The whole API suite (test/serve.api.test.ts) once more, served from a LanceDB store holding the same vectors as
 * the hnswlib bundle: every endpoint, error and explanation must come out the same from either store.
 */
process.env.DRESSMATCH_TEST_STORE = 'lancedb';
await import('./serve.api.test.ts');
