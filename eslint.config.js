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
  // Command-line modules are loaded for every command (and for --help): they may take values from another stage's
  // defaults.ts only; its face loads that stage's libraries (the model face alone is tfjs, about 70 MB of memory).
  // Heavy modules are imported inside the command's action instead.
  {
    files: ['src/*/cli.ts', 'src/cli/*.ts'],
    ignores: ['src/cli/*-run.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./[a-z-]+/index\\.ts$',
              allowTypeImports: true,
              message: "Take values from the stage's defaults.ts (or import its face inside the action).",
            },
          ],
        },
      ],
    },
  },
);

function stageFace(up) {
  return {
    regex: `^${up.replace(/[./]/g, '\\$&')}(?!util/)[a-z-]+/(?!(index|defaults|cli)\\.ts$)`,
    message: 'Import another stage through its face (index.ts, or defaults.ts for --help defaults).',
  };
}
