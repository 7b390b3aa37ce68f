/**
 * Response checks (the tests' mode, `validateResponses`): the bytes every JSON answer is about to send are checked
 * against the schema openapi.yaml declares for its operation, status and media type, on the path production takes
 * (the check reads what `response.end` is given; it changes nothing that passes). An answer that breaks the
 * contract, or a status the operation does not declare, is replaced by a 500 problem naming the violation.
 */
import type { ValidateFunction } from 'ajv/dist/2020.js';
import type { Request, RequestHandler } from 'express';
import { parse as parseYaml } from 'yaml';
import { contractAjv, contractSchema } from './contract.ts';

interface MediaType {
  schema?: object;
}
interface SpecResponse {
  $ref?: string;
  content?: Record<string, MediaType>;
}
interface Spec {
  paths: Record<string, Record<string, { responses?: Record<string, SpecResponse> }>>;
  components?: { responses?: Record<string, SpecResponse> };
}

/** Validators keyed `METHOD template status media-type`, and the statuses each operation declares. */
interface Checks {
  validators: Map<string, ValidateFunction>;
  statuses: Map<string, Set<string>>;
}

function compileChecks(specText: string): Checks {
  const spec = parseYaml(specText) as Spec;
  const ajv = contractAjv(specText);
  const resolve = (response: SpecResponse) =>
    response.$ref ? (spec.components?.responses?.[response.$ref.split('/').pop() ?? ''] ?? {}) : response;
  const checks: Checks = { validators: new Map(), statuses: new Map() };
  for (const [template, operations] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const operationKey = `${method.toUpperCase()} ${template}`;
      checks.statuses.set(operationKey, new Set(Object.keys(operation.responses ?? {})));
      for (const [status, declared] of Object.entries(operation.responses ?? {})) {
        for (const [type, media] of Object.entries(resolve(declared).content ?? {})) {
          if (!media.schema || !type.includes('json')) continue;
          const schema = contractSchema(media.schema);
          checks.validators.set(`${operationKey} ${status} ${type}`, ajv.compile(schema));
        }
      }
    }
  }
  return checks;
}

/** The violation of an answer, or undefined when the contract holds. */
function violation(checks: Checks, request: Request, status: number, type: string, body: string) {
  const template =
    request.res?.routeTemplate ?? (request as { openapi?: { openApiRoute?: string } }).openapi?.openApiRoute;
  if (!template) return undefined;
  const operation = `${request.method} ${template}`;
  const declared = checks.statuses.get(operation);
  if (!declared) return undefined;
  if (!declared.has(String(status))) return `${operation} does not declare status ${status}`;
  const validate = checks.validators.get(`${operation} ${status} ${type.split(';')[0].trim()}`);
  if (!validate || body === '') return undefined;
  if (validate(JSON.parse(body))) return undefined;
  return `${operation} ${status}: ${(validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join('; ')}`;
}

export function responseChecks(specText: string): RequestHandler {
  const checks = compileChecks(specText);
  return (request, response, next) => {
    const end = response.end.bind(response) as (...args: unknown[]) => typeof response;
    response.end = ((...args: unknown[]) => {
      const [chunk] = args;
      const type = String(response.getHeader('Content-Type') ?? '');
      const body = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
      const problem =
        response.statusCode === 304 ? undefined : violation(checks, request, response.statusCode, type, body);
      if (!problem || response.headersSent) return end(...args);
      const replaced = JSON.stringify({
        type: 'about:blank',
        title: 'Contract violation',
        status: 500,
        detail: problem,
      });
      response.statusCode = 500;
      response.setHeader('Content-Type', 'application/problem+json');
      response.setHeader('Content-Length', String(Buffer.byteLength(replaced)));
      return end(replaced);
    }) as typeof response.end;
    next();
  };
}
