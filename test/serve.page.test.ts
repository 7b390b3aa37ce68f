/**
 * The web page end to end in headless Chromium (Debian's, driven by playwright-core): browse and search the
 * catalogue, open a product, see one row of explained neighbours per condition, switch on a heat map, filter by
 * condition and query by an uploaded photo — with no console error (CSP violations included).
 * Set SCREENSHOT_DIR to keep screenshots of the page.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { RunningServer } from '../src/serve/server.ts';
import type { ServeFixture } from './fixtures/serve/build.ts';
import { openPageSession, type PageSession } from './fixtures/serve/browser.ts';
import { DEFAULT_HEATMAP_METHOD } from '../src/explain/index.ts';

let session: PageSession;
let fixture: ServeFixture;
let server: RunningServer;
let page: Page;
let problems: string[];

before(async () => {
  session = await openPageSession('dressmatch-serve-page-');
  ({ fixture, server, page, problems } = session);
});

after(async () => {
  await session?.close();
});

const screenshot = (name: string) => session.screenshot(name);

/** Every <img> matched has finished loading real pixels. */
async function imagesLoaded(selector: string): Promise<number> {
  await page.waitForFunction(
    (s) =>
      [...document.querySelectorAll<HTMLImageElement>(s)].every(
        (img) => img.complete && img.naturalWidth > 0,
      ),
    selector,
  );
  return page.locator(selector).count();
}

// Slow: drives Chromium through the page, and each heat map runs the model's explanation in the server's worker.
test('browse, open a product, read the explanations, view a heat map, upload a photo', async () => {
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]');
  const conditions = fixture.catalogue.conditions;

  // the catalogue grid with real thumbnails, and the served index version in the header
  assert.equal(await page.locator('#grid .card').count(), 24);
  assert.equal(await imagesLoaded('#grid .card img'), 24);
  assert.match((await page.textContent('#index-version')) ?? '', /^index v/);
  assert.match(
    (await page.textContent('#provenance')) ?? '',
    /^model [0-9a-f]{12} · .*published by/,
    'what is served',
  );
  assert.equal(await page.textContent('#result-count'), `${fixture.products.length} products`);
  await page.click('#next');
  await page.waitForFunction(
    (n) => document.querySelectorAll('#grid .card').length === n,
    fixture.products.length - 24,
  );
  await page.click('#prev');

  // search narrows the grid to matching products
  const colour = fixture.products[0].attributes.color[0];
  const matching = fixture.products.filter(
    (p) => p.attributes.color.includes(colour) || p.title.toLowerCase().includes(colour),
  );
  await page.fill('#search', colour);
  await page.waitForFunction(
    (n) => document.querySelectorAll('#grid .card').length === n,
    Math.min(24, matching.length),
  );
  const ids = await page
    .locator('#grid .card')
    .evaluateAll((cards) => cards.map((c) => (c as HTMLElement).dataset.productId));
  assert.deepEqual(
    ids.sort(),
    matching
      .map((p) => p.id)
      .slice(0, 24)
      .sort(),
  );

  // open the first product: one row of explained neighbours per condition
  const chosen = matching[0];
  await page.click(`#grid .card[data-product-id="${chosen.id}"]`);
  await page.waitForFunction((n) => document.querySelectorAll('.group').length === n, conditions.length);
  assert.equal(await page.textContent('#query-title'), chosen.title);
  assert.ok(page.url().endsWith(`#/product/${chosen.id}`));
  const rows = await page.locator('.group').evaluateAll((groups) =>
    groups.map((g) => ({
      condition: (g as HTMLElement).dataset.condition,
      neighbours: g.querySelectorAll('.neighbour').length,
      scores: [...g.querySelectorAll('.score-text')].map((s) => s.textContent),
      bars: g.querySelectorAll('.dims .bar-row').length,
      maskBars: g.querySelectorAll('.mask span').length,
    })),
  );
  assert.deepEqual(
    rows.map((r) => r.condition),
    conditions,
  );
  for (const row of rows) {
    assert.equal(row.neighbours, 6, `${row.condition} shows k=6 neighbours`);
    for (const score of row.scores)
      assert.match(score ?? '', /^closer than (\d+(\.\d)?% of random pairs|every sampled random pair)$/);
    assert.ok(row.bars >= 6, `${row.condition} shows the dimensions behind each distance`);
    assert.equal(row.maskBars, fixture.model.config.embedDim);
  }
  await imagesLoaded('.neighbour img');
  assert.ok((await page.locator('.chip.shared, .chip.differing').count()) > 0, 'label comparisons are shown');
  await screenshot('product');

  // a heat map replaces the neighbour's photo on demand
  const firstCard = page.locator('.group').first().locator('.neighbour').first();
  await firstCard.locator('.heat-toggle').click();
  await page.waitForFunction(() => {
    const img = document.querySelector<HTMLImageElement>('.group .neighbour figure img');
    return img?.src.includes('heatmap.png') && img.complete && img.naturalWidth === 224;
  });
  assert.equal(await firstCard.locator('.heat-toggle').getAttribute('aria-pressed'), 'true');
  // the page says which method drew it and what bright means
  const legend = page.locator('#heatmap-legend');
  assert.ok(await legend.isVisible(), 'the heat-map legend is shown with a heat map');
  assert.equal(await legend.getAttribute('data-method'), DEFAULT_HEATMAP_METHOD.csn);
  const methodName = DEFAULT_HEATMAP_METHOD.csn.replaceAll('-', ' ');
  assert.ok(
    ((await legend.textContent()) ?? '').startsWith(`Heat maps: ${methodName}. Bright: `),
    'the legend names the method and says what bright means',
  );
  await screenshot('heatmap');

  // clicking a neighbour's title navigates to it
  const neighbourId = await firstCard.getAttribute('data-product-id');
  await firstCard.locator('.n-title').click();
  await page.waitForFunction(
    (id) => document.querySelector('.query .eyebrow')?.textContent === `Product ${id}`,
    neighbourId,
  );

  // one condition only
  await page.selectOption('#condition-filter', 'length');
  await page.waitForFunction(() => document.querySelectorAll('.group').length === 1);
  assert.equal(await page.locator('.group').getAttribute('data-condition'), 'length');
  await page.selectOption('#condition-filter', '');

  // query by photo: the uploaded product image finds that product first under every condition
  const target = fixture.products[4];
  await page.setInputFiles('#upload', join(fixture.catalogue.root, target.image));
  await page.waitForFunction(
    () => document.querySelector('#query-title')?.textContent === 'Products similar to your photo',
  );
  await page.waitForFunction((n) => document.querySelectorAll('.group').length === n, conditions.length);
  const firsts = await page
    .locator('.group')
    .evaluateAll((groups) =>
      groups.map((g) => (g.querySelector('.neighbour') as HTMLElement | null)?.dataset.productId),
    );
  assert.deepEqual(
    firsts,
    conditions.map(() => target.id),
  );
  await imagesLoaded('.query img');
  await screenshot('upload');

  assert.deepEqual(problems, [], 'no console errors, CSP violations or failed requests');
});

/**
 * Controls whose box runs past the viewport's left or right edge (a control inside a scrolling row, such as a
 * condition's neighbours, counts by its row), and how many lines the header's tagline takes.
 */
async function layoutAt(
  width: number,
): Promise<{ offscreen: string[]; taglineLines: number; scrollWidth: number }> {
  await page.setViewportSize({ width, height: 900 });
  return page.evaluate(() => {
    const viewport = document.documentElement.clientWidth;
    // No named functions in here: tsx would wrap them in a helper the page does not have.
    const scrolling = ['auto', 'scroll'];
    const offscreen: string[] = [];
    const controls = 'button, input, select, textarea, a, label, fieldset, .badge';
    for (let element of document.querySelectorAll<HTMLElement>(controls)) {
      let ancestor = element.parentElement;
      while (ancestor && !scrolling.includes(getComputedStyle(ancestor).overflowX))
        ancestor = ancestor.parentElement;
      if (ancestor && ancestor !== document.documentElement && ancestor !== document.body) element = ancestor;
      const box = element.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;
      if (box.right > viewport + 0.5 || box.left < -0.5) {
        offscreen.push(
          `${element.tagName.toLowerCase()}#${element.id}.${element.className}: ${Math.round(box.left)}–${Math.round(box.right)}`,
        );
      }
    }
    const range = document.createRange();
    range.selectNodeContents(document.querySelector('.tagline')!);
    const tops = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
    return {
      offscreen: [...new Set(offscreen)],
      taglineLines: tops.size,
      scrollWidth: document.documentElement.scrollWidth,
    };
  });
}

test('fits the screen at 1280–1440 px: every control inside the viewport, the tagline on one or two lines', async () => {
  await page.goto(`${server.url}/#/product/${fixture.products[0].id}`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForFunction(() => document.querySelectorAll('.group').length > 0);
  for (const width of [1280, 1366, 1440]) {
    const layout = await layoutAt(width);
    assert.deepEqual(layout.offscreen, [], `controls off the screen at ${width} px`);
    assert.ok(layout.scrollWidth <= width, `no horizontal scrolling at ${width} px (${layout.scrollWidth})`);
    assert.ok(layout.taglineLines <= 2, `the tagline takes ${layout.taglineLines} lines at ${width} px`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  const png = await page.screenshot();
  assert.equal(png.readUInt32BE(16), 1280, 'the screenshot is 1280 px wide');
  await screenshot('fits-1280');
  await page.setViewportSize({ width: 1400, height: 1000 });
});

test("shows each condition's test accuracy and MAP where conditions are chosen, and nothing when unknown", async () => {
  const served = fixture.catalogue.conditions;
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]');
  await page.click(`#grid .card[data-product-id="${fixture.products[0].id}"]`);
  await page.waitForFunction(() => document.querySelectorAll('.group').length > 0);
  const plain = await page.locator('#condition-filter option').allTextContents();
  assert.deepEqual(plain, ['All conditions', ...served], 'no figures when /conditions has none');
  assert.equal(await page.locator('#combine .quality').count(), 0);

  // The served model's figures as GET /conditions gives them (a number, or null when unknown).
  await page.route('**/conditions', async (route) => {
    const response = await route.fetch();
    const body = (await response.json()) as { conditions: { name: string }[] };
    body.conditions = body.conditions.map((c, i) => ({
      ...c,
      testAccuracy: i === 0 ? null : 0.5 + i / 100,
      testMap: i === 0 ? null : 0.25,
    }));
    await route.fulfill({ response, json: body });
  });
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForFunction(() => document.querySelectorAll('#condition-filter option').length > 1);
  const options = await page.locator('#condition-filter option').allTextContents();
  assert.equal(options[1], served[0], 'a condition without figures shows none');
  assert.equal(options[2], `${served[1]} — test accuracy 51.0 %, MAP 25.0 %`);
  assert.equal(await page.locator('#combine .quality').count(), served.length - 1);
  await page.unroute('**/conditions');
  assert.deepEqual(problems, [], 'no console errors, CSP violations or failed requests');
});
