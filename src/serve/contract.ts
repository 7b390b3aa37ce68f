/**
 * The API contract at the edge: requests (and optionally responses) validated against openapi.yaml, uploads parsed
 * with limits, and the few things the validator lets through or words vaguely made precise: integers only in plain
 * decimal (ajv would coerce `0x10`, `1e1`, `+5` and ` 5`), a broken multipart body as a 400 instead of a 500, and a
 * 413 that names the limit that was hit.
 */
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import express, { type ErrorRequestHandler, type Request, type RequestHandler } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { parse as parseYaml } from 'yaml';
import { HttpProblem } from './problem.ts';

export const SPEC_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));

export interface UploadLimits {
  fileSize: number;
  files: number;
  fields: number;
  parts: number;
}

export function uploadLimits(maxUploadBytes: number): UploadLimits {
  return { fileSize: maxUploadBytes, files: 1, fields: 4, parts: 5 };
}

/** The contract's paths whose operations take a body: express-openapi-validator parses and checks those. */
export const BODY_PATHS: ReadonlySet<string> = new Set(['/similar', '/recommend']);

/**
 * The checks of the operations with a body (uploads and JSON), on their paths only: every other path is checked by
 * its route (request-checks.ts) or is not in the contract.
 */
export function contractValidator(limits: UploadLimits): (RequestHandler | ErrorRequestHandler)[] {
  return [
    ...OpenApiValidator.middleware({
      apiSpec: SPEC_PATH,
      validateRequests: { allowUnknownQueryParameters: false },
      validateResponses: false,
      validateApiSpec: true,
      ignorePaths: (path: string) => !BODY_PATHS.has(path),
      fileUploader: { limits },
    }),
    uploadErrors(limits),
  ];
}

/** A parameter of the contract, its `$ref` resolved. */
export interface SpecParameter {
  $ref?: string;
  name?: string;
  in?: string;
  required?: boolean;
  schema?: { type?: string } & Record<string, unknown>;
}
interface Spec {
  paths: Record<string, Record<string, { parameters?: SpecParameter[] }>>;
  components?: { parameters?: Record<string, SpecParameter> };
}

/** Every operation's parameters, `$ref`s resolved, keyed `METHOD route-template`. */
export type OperationParameters = Map<string, SpecParameter[]>;

/** The contract's parameters, read once at start-up for the checks that run beside the validator. */
export function operationParameters(specText: string): OperationParameters {
  const spec = parseYaml(specText) as Spec;
  const resolve = (p: SpecParameter) =>
    p.$ref ? (spec.components?.parameters?.[p.$ref.split('/').pop() ?? ''] ?? {}) : p;
  const found = new Map<string, SpecParameter[]>();
  for (const [path, operations] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      found.set(`${method.toUpperCase()} ${path}`, (operation.parameters ?? []).map(resolve));
    }
  }
  return found;
}

/** Names of the integer query parameters of each operation, keyed `METHOD route-template`. */
function integerQueryParameters(operations: OperationParameters): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const [operation, parameters] of operations) {
    const names = parameters
      .filter((p) => p.in === 'query' && p.schema?.type === 'integer')
      .map((p) => p.name ?? '');
    if (names.length > 0) found.set(operation, names);
  }
  return found;
}

/**
 * How an integer query parameter must be written: decimal digits, optionally signed (`k=01` is 1, as the contract's
 * integer type allows); ajv would also coerce `0x10`, `1e1`, `+5` and ` 5`, which are refused.
 */
export const PLAIN_INTEGER = /^-?[0-9]+$/;

/** After the validator: integer query parameters must be written as plain decimal integers. */
export function plainIntegers(operations: OperationParameters): RequestHandler {
  const integers = integerQueryParameters(operations);
  return (request, _response, next) => {
    const route = (request as Request & { openapi?: { openApiRoute?: string } }).openapi?.openApiRoute;
    const names = route ? integers.get(`${request.method} ${route}`) : undefined;
    if (names) {
      const raw = new URLSearchParams(request.originalUrl.split('?')[1] ?? '');
      for (const name of names) {
        for (const value of raw.getAll(name)) {
          if (!PLAIN_INTEGER.test(value)) {
            throw new HttpProblem(
              400,
              'invalid-request',
              `${name} must be a plain decimal integer, not ${JSON.stringify(value)}.`,
              {
                errors: [{ path: `/query/${name}`, message: 'must be a plain decimal integer' }],
              },
            );
          }
        }
      }
    }
    next();
  };
}

/** Multer's fixed messages for its limits (the validator keeps only the message). */
function limitDetail(message: string, limits: UploadLimits): string | undefined {
  switch (message) {
    case 'File too large':
      return `The file is larger than the upload limit of ${limits.fileSize} bytes.`;
    case 'Too many files':
      return `The form has more files than the limit of ${limits.files}.`;
    case 'Too many parts':
      return `The form has more parts than the limit of ${limits.parts}.`;
    case 'Too many fields':
      return `The form has more fields than the limit of ${limits.fields}.`;
    case 'Field value too long':
      return 'A form field is longer than the limit of 1 MiB.';
    case 'Field name too long':
      return 'A form field name is longer than the limit of 100 bytes.';
    default:
      return undefined;
  }
}

/**
 * Errors of the validator's upload parsing: limits hit become a 413 naming the limit; a body busboy cannot parse
 * (garbage, truncated, wrong boundary) reaches here as a 500 and becomes the 400 it is.
 */
function uploadErrors(limits: UploadLimits): ErrorRequestHandler {
  return (error: unknown, request, _response, next) => {
    const known = (error ?? {}) as { status?: number; message?: string };
    const multipart = request.is('multipart/form-data') === 'multipart/form-data';
    const detail = limitDetail(known.message ?? '', limits);
    if (known.status === 413 && detail) {
      next(new HttpProblem(413, 'upload-too-large', detail));
    } else if (multipart && (known.status === undefined || known.status >= 500)) {
      next(new HttpProblem(400, 'invalid-request', 'The multipart/form-data body cannot be parsed.'));
    } else {
      next(error);
    }
  };
}

/**
 * An ajv instance that knows the whole contract (added as the schema `openapi`), for schemas taken out of it:
 * `contractSchema` points their `#/components/...` refs there.
 */
export function contractAjv(specText: string): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  ajv.addSchema(parseYaml(specText) as object, 'openapi');
  return ajv;
}

export function contractSchema(schema: object): object {
  return JSON.parse(JSON.stringify(schema).replaceAll('"$ref":"#/', '"$ref":"openapi#/')) as object;
}

/** JSON bodies (POST /recommend): 16 KiB holds 20 examples and their filters. */
export const JSON_BODY_LIMIT = 16 * 1024;

/** The JSON body parser, with a 413 that names its limit. */
export function jsonBody(): (RequestHandler | ErrorRequestHandler)[] {
  const tooLarge: ErrorRequestHandler = (error: unknown, _request, _response, next) => {
    if ((error as { type?: string }).type === 'entity.too.large') {
      next(
        new HttpProblem(
          413,
          'upload-too-large',
          `The JSON body is larger than the limit of ${JSON_BODY_LIMIT} bytes.`,
        ),
      );
    } else next(error);
  };
  return [express.json({ limit: JSON_BODY_LIMIT }), tooLarge];
}
