/**
 * The page's filter box, "combine conditions" control and "more like these" selection in headless Chromium
 * (Debian's, driven by playwright-core), against a real server over a demo catalogue with product fields.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import type { RunningServer } from '../src/serve/server.ts';
import type { ServeFixture } from './fixtures/serve/build.ts';
import { openPageSession, type PageSession } from './fixtures/serve/browser.ts';

let session: PageSession;
let fixture: ServeFixture;
let server: RunningServer;
let page: Page;
let problems: string[];

before(async () => {
  session = await openPageSession('dressmatch-serve-page-filters-');
  ({ fixture, server, page, problems } = session);
});

after(async () => {
  await session?.close();
});

const screenshot = (name: string) => session.screenshot(name);

const fieldsOf = (id: string) => fixture.products.find((p) => p.id === id)?.fields ?? {};

async function neighbourIds(): Promise<string[]> {
  return page
    .locator('.group .neighbour')
    .evaluateAll((cards) => cards.map((c) => (c as HTMLElement).dataset.productId ?? ''));
}

// Slow: drives Chromium through several round trips of the page (filters, combined conditions, recommendations).
test('filter the neighbours, combine conditions, and ask for more like the ticked ones', async () => {
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]');
  const query = fixture.products[0];
  await page.goto(`${server.url}/#/product/${query.id}`);
  await page.waitForFunction(
    (n) => document.querySelectorAll('.group').length === n,
    fixture.catalogue.conditions.length,
  );
  assert.match((await page.textContent('#filter-help')) ?? '', /price \(number/);

  // a filter: every neighbour shown passes it, under every condition
  await page.fill('#filters', 'in_stock:false');
  await page.press('#filters', 'Enter');
  await page.waitForFunction(
    () =>
      [...document.querySelectorAll('.group')].every((g) => g.querySelectorAll('.neighbour').length > 0) &&
      !document.querySelector('#groups')?.classList.contains('loading'),
  );
  await page.waitForFunction(
    (ids) =>
      [...document.querySelectorAll<HTMLElement>('.group .neighbour')].every((c) =>
        ids.includes(c.dataset.productId ?? ''),
      ),
    fixture.products.filter((p) => p.fields?.in_stock === false).map((p) => p.id),
  );
  for (const id of await neighbourIds()) assert.equal(fieldsOf(id).in_stock, false, `${id} is out of stock`);
  await screenshot('filtered');

  // an invalid filter: the problem's detail, listing what is valid, is shown
  await page.fill('#filters', 'colour:red');
  await page.press('#filters', 'Enter');
  await page.waitForSelector('#error:not([hidden])');
  assert.match((await page.textContent('#error')) ?? '', /Unknown filter name "colour".*valid names are/);
  await page.fill('#filters', '');
  await page.press('#filters', 'Enter');
  await page.waitForFunction(() => document.querySelector('#error')?.hasAttribute('hidden'));

  // combine colour (weight 2) and pattern: one group, each neighbour with its parts' shares
  await page.fill('#combine input[data-weight="color"]', '2');
  await page.check('#combine input[data-condition="color"]');
  await page.check('#combine input[data-condition="pattern"]');
  await page.waitForFunction(
    () =>
      document.querySelectorAll('.group').length === 1 &&
      document.querySelector('.group')?.getAttribute('data-condition') === 'color:2,pattern:1',
  );
  const parts = await page.locator('.group .neighbour .parts').allTextContents();
  assert.ok(parts.length > 0, 'combined neighbours show their parts');
  for (const line of parts) assert.match(line, /^color \d+% · pattern \d+%$/);
  await screenshot('combined');

  // tick two neighbours and ask for more like these (with the product shown)
  const liked = (await neighbourIds()).slice(0, 2);
  for (const id of liked) await page.check(`.neighbour[data-product-id="${id}"] .like-box`);
  assert.equal(await page.textContent('#more-like'), 'More like these (2)');
  await page.click('#more-like');
  await page.waitForFunction(() => document.querySelector('.group h2')?.textContent === 'More like these 3');
  const recommended = await neighbourIds();
  assert.ok(recommended.length > 0, 'recommendations are shown');
  for (const id of recommended)
    assert.ok(![query.id, ...liked].includes(id), `example ${id} is not recommended`);
  const closest = await page.locator('.group .neighbour .closest').allTextContents();
  assert.equal(closest.length, recommended.length);
  for (const line of closest) {
    const id = line.replace('Closest to ', '');
    assert.ok([query.id, ...liked].includes(id), `closest positive ${id} is an example`);
  }
  await screenshot('more-like-these');

  // The invalid filter's 400 is the one console entry expected (Chromium logs every failed response).
  const expected400 =
    'console: Failed to load resource: the server responded with a status of 400 (Bad Request)';
  assert.equal(problems.filter((p) => p === expected400).length, 1, 'one 400, from the invalid filter');
  assert.deepEqual(
    problems.filter((p) => p !== expected400),
    [],
    'no other console errors, CSP violations or failed requests',
  );
});
