/**
 * `GET /similar/{productId}` answered ahead of the express chain when its URL is plain: a product id and the
 * `condition`, `k` and `explain` parameters, with nothing to decode. Such a URL is checked against the contract's
 * own parameter schemas from openapi.yaml (compiled once with ajv) and answered by the same function as the express
 * route, ahead of express (front.ts). What the express chain costs such a request, and this path does not pay:
 * express itself, the router's layers, the validator's route lookup (it compiles a path regex for every route of
 * the contract on every request; 9.7 % of an uncomputed request's profile) and its parameter parsing
 * (bench/results/serve-profile.md).
 *
 * Anything else takes the full path, which words every error: filters, unknown or repeated parameters, escapes,
 * HEAD, an unknown product or condition (the hot path then hands the request on before it has sent anything). So
 * the hot path answers exactly the URLs the full path would answer 200, with the same bytes
 * (test/serve.hot-path.test.ts sends both the same URLs).
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { SIMILAR_ROUTE } from './answer-cache.ts';
import { PLAIN_INTEGER, type OperationParameters } from './contract.ts';
import type { FastAnswer } from './front.ts';
import type { QueryOf, RouteContext } from './routes/context.ts';
import { resolveAsk, similarToProduct } from './neighbours.ts';
import { requireSlot } from './products.ts';

interface ProductSimilarRequest {
  productId: string;
  query: QueryOf<'getSimilar'>;
}

const OPERATION = `GET ${SIMILAR_ROUTE}`;
const PREFIX = '/similar/';
/** The query parameters the hot path reads; a URL with any other (filters) takes the full path. */
const HOT_PARAMETERS = ['condition', 'k', 'explain'] as const;
type HotParameter = (typeof HOT_PARAMETERS)[number];
/** A path segment or query value with nothing to decode: no percent escapes, no `+`, no reserved characters. */
const PLAIN_SEGMENT = /^[A-Za-z0-9._~-]+$/;
const PLAIN_VALUE = /^[A-Za-z0-9._~:,-]*$/;

type UrlCheck = (url: string) => ProductSimilarRequest | undefined;

/** The contract's schemas for the product id and the hot parameters, compiled into one check of a raw URL. */
function compileUrlCheck(operations: OperationParameters): UrlCheck {
  const parameters = operations.get(OPERATION) ?? [];
  const schemaOf = (name: string) => {
    const schema = parameters.find((p) => p.name === name)?.schema;
    if (!schema) throw new Error(`openapi.yaml: ${OPERATION} has no parameter ${name}`);
    return schema;
  };
  const ajv = new Ajv({ strict: true });
  const validId: ValidateFunction = ajv.compile(schemaOf('productId'));
  const validQuery: ValidateFunction<QueryOf<'getSimilar'>> = ajv.compile({
    type: 'object',
    properties: Object.fromEntries(HOT_PARAMETERS.map((name) => [name, schemaOf(name)])),
    additionalProperties: false,
  });
  return (url) => {
    if (!url.startsWith(PREFIX)) return undefined;
    const mark = url.indexOf('?');
    const productId = mark < 0 ? url.slice(PREFIX.length) : url.slice(PREFIX.length, mark);
    if (!PLAIN_SEGMENT.test(productId) || !validId(productId)) return undefined;
    const query = mark < 0 ? {} : plainQuery(url.slice(mark + 1));
    if (!query || !validQuery(query)) return undefined;
    return { productId, query };
  };
}

/** `name=value` pairs of the hot parameters, each at most once, integers in plain decimal; else undefined. */
function plainQuery(text: string): Partial<Record<HotParameter, string | number>> | undefined {
  const query: Partial<Record<HotParameter, string | number>> = {};
  for (const pair of text.split('&')) {
    const equals = pair.indexOf('=');
    const name = pair.slice(0, equals) as HotParameter;
    const value = pair.slice(equals + 1);
    if (equals < 1 || !HOT_PARAMETERS.includes(name) || name in query || !PLAIN_VALUE.test(value)) {
      return undefined;
    }
    if (name === 'k') {
      if (!PLAIN_INTEGER.test(value)) return undefined;
      query.k = Number(value);
    } else {
      query[name] = value;
    }
  }
  return query;
}

export function similarHotPath(context: RouteContext, operations: OperationParameters): FastAnswer {
  const check = compileUrlCheck(operations);
  return (request, response, handOn) => {
    const url = request.url ?? '/';
    const asked = request.method === 'GET' ? check(url) : undefined;
    const lease = asked && context.state.lease();
    if (!asked || !lease) return false;
    response.once('close', lease.release);
    const { index } = lease;
    Promise.resolve()
      .then(() =>
        similarToProduct(index, requireSlot(index, asked.productId), resolveAsk(index, asked.query)),
      )
      .then(
        (body) => {
          context.metrics.hotPath.inc({ outcome: 'answered' });
          response.routeTemplate = SIMILAR_ROUTE;
          context.answers.send(request, response, url, index.version, body);
        },
        // Whatever went wrong (an unknown product or condition, a malformed combination) is worded by the full
        // path, with its headers; nothing has been sent yet.
        () => {
          context.metrics.hotPath.inc({ outcome: 'handed_on' });
          handOn();
        },
      )
      // Sending failed after the answer was computed: the full path answers (its error handler words a 500), or,
      // once bytes are out, the connection is cut.
      .catch(() => (response.headersSent ? response.destroy() : handOn()));
    return true;
  };
}
