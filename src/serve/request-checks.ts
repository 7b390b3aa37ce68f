/**
 * Request checks of the operations without a body (every GET of the contract), compiled once at start-up from
 * openapi.yaml: one ajv validator per operation, mounted on its route, so a request is checked by the route express
 * already matched (no second lookup of the contract per request). Parameters are read as the contract declares
 * them: integers in plain decimal only (ajv would coerce `0x10`, `1e1`, `+5` and ` 5`), form-exploded arrays,
 * no unknown query parameter. A method the path does not offer is a 405 naming the ones it does. Operations with
 * a body (uploads, JSON) are checked by express-openapi-validator (contract.ts), which parses them.
 */
import type { Ajv2020, ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import type { Express, RequestHandler } from 'express';
import { PLAIN_INTEGER, contractAjv, contractSchema, type SpecParameter } from './contract.ts';
import { HttpProblem } from './problem.ts';

/** An operation's parameters as the check reads them. */
interface OperationCheck {
  path: SpecParameter[];
  query: SpecParameter[];
  validate: ValidateFunction;
}

/** `/similar/{productId}` → `/similar/:productId` (express' route syntax). */
export function expressPath(template: string): string {
  return template.replace(/\{([^}]+)\}/g, ':$1');
}

function compileOperation(ajv: Ajv2020, parameters: SpecParameter[]): OperationCheck {
  const byPlace = (place: string) => parameters.filter((p) => p.in === place);
  const properties = (list: SpecParameter[]) =>
    Object.fromEntries(list.map((p) => [p.name ?? '', p.schema ?? {}]));
  const required = (list: SpecParameter[]) => list.filter((p) => p.required).map((p) => p.name ?? '');
  const schema = {
    type: 'object',
    properties: {
      path: { type: 'object', properties: properties(byPlace('path')), required: required(byPlace('path')) },
      query: {
        type: 'object',
        properties: properties(byPlace('query')),
        required: required(byPlace('query')),
        additionalProperties: false,
      },
    },
  };
  return { path: byPlace('path'), query: byPlace('query'), validate: ajv.compile(contractSchema(schema)) };
}

/** One problem entry per ajv error, pathed like the contract validator's (`/query/k`). */
function problemErrors(errors: ErrorObject[]): { path: string; message: string }[] {
  return errors.map((error) => {
    const extra = error.params as { additionalProperty?: string };
    if (error.keyword === 'additionalProperties' && extra.additionalProperty) {
      const name = extra.additionalProperty;
      return { path: `/query/${name}`, message: `Unknown query parameter '${name}'` };
    }
    return { path: error.instancePath, message: error.message ?? 'is invalid' };
  });
}

function invalid(errors: { path: string; message: string }[]): HttpProblem {
  const detail = errors.map((e) => `${e.path} ${e.message}`).join('; ');
  return new HttpProblem(400, 'invalid-request', detail, { errors });
}

/** A query value as its schema types it: arrays from repeated (or single) values, integers in plain decimal. */
function readQueryValue(
  parameter: SpecParameter,
  raw: unknown,
): { value: unknown } | { error: { path: string; message: string } } {
  const type = parameter.schema?.type;
  if (type === 'array') return { value: Array.isArray(raw) ? raw : [raw] };
  if (type === 'integer' && typeof raw === 'string') {
    if (!PLAIN_INTEGER.test(raw)) {
      return { error: { path: `/query/${parameter.name}`, message: 'must be a plain decimal integer' } };
    }
    return { value: Number(raw) };
  }
  return { value: raw };
}

function checkRequest(check: OperationCheck, params: object, rawQuery: Record<string, unknown>): void {
  const query: Record<string, unknown> = { ...rawQuery };
  const errors: { path: string; message: string }[] = [];
  for (const parameter of check.query) {
    const name = parameter.name ?? '';
    if (!Object.hasOwn(query, name)) continue;
    const read = readQueryValue(parameter, query[name]);
    if ('error' in read) errors.push(read.error);
    else query[name] = read.value;
  }
  if (errors.length > 0) throw invalid(errors);
  if (!check.validate({ path: params, query })) throw invalid(problemErrors(check.validate.errors ?? []));
}

declare module 'node:http' {
  interface ServerResponse {
    /** The contract's route template of the request (what metrics label it with). */
    routeTemplate?: string;
  }
}

/**
 * Mount a check on each path of the contract whose operations take no body: the parameters of the operation for
 * the request's method, or a 405 with Allow. HEAD is checked as GET (the app routes it as GET).
 */
export function registerRequestChecks(
  app: Express,
  specText: string,
  operations: Map<string, SpecParameter[]>,
  bodyPaths: ReadonlySet<string>,
): void {
  const ajv = contractAjv(specText);
  const byPath = new Map<string, Map<string, OperationCheck>>();
  for (const [key, parameters] of operations) {
    const [method, template] = key.split(' ');
    if (bodyPaths.has(template)) continue;
    if (!byPath.has(template)) byPath.set(template, new Map());
    byPath.get(template)?.set(method, compileOperation(ajv, parameters));
  }
  for (const [template, checks] of byPath) {
    const methods = [...checks.keys()];
    // HEAD works wherever GET does (RFC 9110).
    const allow = [...methods, ...(methods.includes('GET') ? ['HEAD'] : [])].join(', ');
    const handler: RequestHandler = (request, response, next) => {
      response.routeTemplate = template;
      const check = checks.get(request.method);
      if (!check) {
        throw new HttpProblem(
          405,
          'method-not-allowed',
          'This resource does not support that method.',
          {},
          { Allow: allow },
        );
      }
      checkRequest(check, request.params, request.query as Record<string, unknown>);
      next();
    };
    app.all(expressPath(template), handler);
  }
}
