/**
 * The heat-map method over real HTTP: the API names the default method and its legend, `method=` picks another,
 * the answer says which method drew it, and a method the model lacks is a problem. openapi.yaml lists exactly the
 * methods src/explain offers. Heat maps render on the model's thread, which runs below the request thread's priority.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_HEATMAP_METHOD, HEATMAP_LEGEND, HEATMAP_METHODS, methodsFor } from '../src/explain/index.ts';
import type { components } from '../src/serve/generated/api-types.ts';
import { SERVE_DEFAULTS } from '../src/serve/defaults.ts';
import type { RunningServer } from '../src/serve/server.ts';
import { startServedFixture, type ServeFixture, type ServedFixture } from './fixtures/serve/build.ts';

type Schemas = components['schemas'];

let served: ServedFixture;
let fixture: ServeFixture;
let server: RunningServer;

before(async () => {
  served = await startServedFixture('dressmatch-explain-serve-');
  ({ fixture, server } = served);
});

after(() => served?.close());

test('openapi.yaml lists exactly the heat-map methods of src/explain', async () => {
  const spec = parseYaml(await readFile('openapi.yaml', 'utf8')) as {
    components: { schemas: { HeatmapMethod: { enum: string[] } } };
  };
  assert.deepEqual(spec.components.schemas.HeatmapMethod.enum, [...HEATMAP_METHODS]);
});

test('GET /similar names the default heat-map method, its legend and the methods offered', async () => {
  const [a] = fixture.products;
  const response = await fetch(`${server.url}/similar/${a.id}?condition=color&k=2`);
  assert.equal(response.status, 200);
  const body = (await response.json()) as Schemas['SimilarResponse'];
  const method = DEFAULT_HEATMAP_METHOD.csn;
  assert.deepEqual(body.heatmap, { method, legend: HEATMAP_LEGEND[method], methods: methodsFor('csn') });
});

test('heatmap.png draws with the default or the asked method and says which', async () => {
  const [a, b] = fixture.products;
  const url = (query: string) =>
    `${server.url}/similar/${a.id}/${b.id}/heatmap.png?condition=color&size=64${query}`;
  const byDefault = await fetch(url(''));
  assert.equal(byDefault.status, 200);
  assert.equal(byDefault.headers.get('x-heatmap-method'), DEFAULT_HEATMAP_METHOD.csn);
  const pictures = new Map<string, Buffer>();
  for (const method of ['gradient', 'occlusion']) {
    const response = await fetch(url(`&method=${method}`));
    assert.equal(response.status, 200, `${method} answers 200`);
    assert.equal(response.headers.get('x-heatmap-method'), method);
    const { data } = await sharp(Buffer.from(await response.arrayBuffer()))
      .raw()
      .toBuffer({ resolveWithObject: true });
    pictures.set(method, data);
  }
  assert.notDeepEqual(
    pictures.get('gradient'),
    pictures.get('occlusion'),
    'two methods paint different maps',
  );
});

test('a method the model does not offer, or an unknown one, is a 400 problem', async () => {
  const [a, b] = fixture.products;
  for (const method of ['attention', 'magic']) {
    const response = await fetch(
      `${server.url}/similar/${a.id}/${b.id}/heatmap.png?condition=color&method=${method}`,
    );
    assert.equal(response.status, 400, `${method} is refused`);
    assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
    const problem = (await response.json()) as Schemas['Problem'];
    assert.equal(problem.type, '/problems/invalid-request');
  }
});

/** The nice value of each of this process's threads (Linux: field 19 of /proc/self/task/<tid>/stat). */
async function threadNiceness(): Promise<Map<number, number>> {
  const niceness = new Map<number, number>();
  for (const tid of await readdir('/proc/self/task')) {
    const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields.length > 16) niceness.set(Number(tid), Number(fields[16]));
  }
  return niceness;
}

test(
  "the model's thread runs below the priority of the thread answering requests",
  { skip: !existsSync('/proc/thread-self') && 'thread priorities are read from Linux /proc' },
  async () => {
    const niceness = await threadNiceness();
    const main = niceness.get(process.pid) ?? NaN;
    const lowered = [...niceness.values()].filter(
      (nice) => nice === Math.min(19, main + SERVE_DEFAULTS.modelThreadNiceness),
    );
    assert.ok(
      lowered.length >= 1,
      `a thread ${SERVE_DEFAULTS.modelThreadNiceness} nice steps below main (${main})`,
    );
    const [a, b] = fixture.products;
    const response = await fetch(`${server.url}/similar/${a.id}/${b.id}/heatmap.png?condition=color&size=64`);
    assert.equal(response.status, 200);
    assert.equal((await threadNiceness()).get(process.pid), main, 'the request thread keeps its priority');
  },
);
