import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'data/demo/**',
      'models/**',
      'runs/**',
      'indexes/**',
      'src/serve/generated/**',
      'src/serve/public/**',
      '.tmp/**',
      'bench/results/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // Stages use each other through their face: index.ts (or defaults.ts, the import-free defaults command lines
  // show in --help; cli.ts for src/cli). src/util is shared and has no face. Tests and benchmarks may reach in.
  {
    files: ['src/*/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [stageFace('../')] }] },
  },
  {
    files: ['src/*/*/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [stageFace('../../')] }] },
  },
);

function stageFace(up) {
  return {
    regex: `^${up.replace(/[./]/g, '\\$&')}(?!util/)[a-z-]+/(?!(index|defaults|cli)\\.ts$)`,
    message: 'Import another stage through its face (index.ts, or defaults.ts for --help defaults).',
  };
}
