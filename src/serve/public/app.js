// dressmatch web page: browse the catalogue, pick a product (or upload a photo) and see its neighbours under every
// condition with their explanations. Plain DOM, no build step; every text from the API goes in via textContent.

const PAGE_SIZE = 24;
const THUMB = 200;

const state = {
  q: '',
  offset: 0,
  total: 0,
  conditions: [],
  /** @type {{kind: 'product', id: string} | {kind: 'upload', file: File} | null} */
  query: null,
  requestSerial: 0,
  /** Product fields from /conditions: [{name, type, values?, min?, max?}]. */
  fields: [],
  /** Neighbours ticked "like" for "More like these". */
  liked: new Set(),
};

const $ = (id) => document.getElementById(id);

/** Create an element: h('div', {class: 'x', onclick: fn}, child, 'text', ...). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
    else if (key === 'style') Object.assign(element.style, value);
    else element.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

class ApiError extends Error {
  constructor(problem, status) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.problem = problem;
    this.status = status;
  }
}

async function api(path, init) {
  const response = await fetch(path, init);
  const type = response.headers.get('content-type') ?? '';
  const body = type.includes('json') ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(typeof body === 'object' ? body : null, response.status);
  return body;
}

const percent = (x) => `${Math.round(x * 100)}%`;

/** Same wording as the server's summaries: one decimal above 99%, where the top neighbours of big catalogues sit. */
function describeScore(score) {
  if (score >= 1) return 'closer than every sampled random pair';
  if (score >= 0.99)
    return `closer than ${Math.min(99.9, Math.floor(score * 1000) / 10).toFixed(1)}% of random pairs`;
  return `closer than ${Math.round(score * 100)}% of random pairs`;
}
const encode = encodeURIComponent;

function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = !message;
}

// ---------------------------------------------------------------------------------------------------- status

async function loadStatus() {
  try {
    const ready = await api('/readyz');
    $('index-version').textContent = `index ${ready.version}`;
    $('index-version').classList.add('ok');
    $('model-info').textContent = ready.model.loaded
      ? `${ready.model.kind.toUpperCase()} · ${ready.model.embedDim} dims · ${ready.model.backend}`
      : 'no model (uploads and heat maps off)';
    $('provenance').textContent = provenanceText(ready.provenance);
    $('upload-form').hidden = !ready.model.loaded;
    $('heatmaps').disabled = !ready.model.loaded;
    return true;
  } catch (error) {
    $('index-version').textContent = 'index loading…';
    $('index-version').classList.remove('ok');
    $('model-info').textContent = error.message;
    return false;
  }
}

/** Model id, training date, test accuracy and publishing refresh of what is served, in one short line. */
function provenanceText(p) {
  const parts = [`model ${p.modelId.slice(0, 12)}`];
  if (p.trainedAt) parts.push(`trained ${p.trainedAt.slice(0, 16).replace('T', ' ')} UTC`);
  if (p.testAccuracy !== null) parts.push(`test accuracy ${(100 * p.testAccuracy).toFixed(1)} %`);
  parts.push(p.refresh ? `published by ${p.refresh}` : 'published by the index command');
  return parts.join(' · ');
}

async function waitUntilReady() {
  while (!(await loadStatus())) await new Promise((resolve) => setTimeout(resolve, 2000));
}

// --------------------------------------------------------------------------------------------------- catalogue

async function loadConditions() {
  const { conditions, fields } = await api('/conditions');
  state.conditions = conditions;
  const select = $('condition-filter');
  select.replaceChildren(h('option', { value: '' }, 'All conditions'));
  for (const condition of conditions) {
    const quality = conditionQuality(condition);
    select.append(
      h('option', { value: condition.name }, quality ? `${condition.name} — ${quality}` : condition.name),
    );
  }
  state.fields = fields;
  filterSuggestions(conditions, fields);
  $('combine').replaceChildren(
    h('legend', {}, 'Combine conditions (weights)'),
    ...conditions.map((c) =>
      h(
        'label',
        {},
        h('input', { type: 'checkbox', 'data-condition': c.name }),
        c.name,
        ...(conditionQuality(c)
          ? [
              h(
                'span',
                { class: 'quality', title: "the served model's test accuracy and MAP" },
                conditionQuality(c),
              ),
            ]
          : []),
        h('input', {
          type: 'number',
          min: '0.1',
          step: '0.1',
          value: '1',
          'data-weight': c.name,
          'aria-label': `${c.name} weight`,
        }),
      ),
    ),
  );
}

/** "test accuracy 94.0 %, MAP 70.8 %" of the served model on a condition, or '' when /conditions has neither. */
function conditionQuality(condition) {
  const parts = [];
  if (typeof condition.testAccuracy === 'number')
    parts.push(`test accuracy ${(100 * condition.testAccuracy).toFixed(1)} %`);
  if (typeof condition.testMap === 'number') parts.push(`MAP ${(100 * condition.testMap).toFixed(1)} %`);
  return parts.join(', ');
}

/** Suggestions for the filter box: every label and field value, and the comparisons of number fields. */
function filterSuggestions(conditions, fields) {
  const options = [];
  for (const c of conditions) for (const v of c.values) options.push(`${c.name}:${v.value}`);
  for (const f of fields) {
    if (f.type === 'number')
      options.push(`${f.name}<${Math.ceil(((f.min ?? 0) + (f.max ?? 0)) / 2)}`, `${f.name}>=${f.min ?? 0}`);
    else for (const v of f.values ?? []) options.push(`${f.name}:${v.value}`);
  }
  $('filter-suggestions').replaceChildren(...options.map((value) => h('option', { value })));
  const described = fields.map((f) =>
    f.type === 'number' ? `${f.name} (number ${f.min}–${f.max})` : `${f.name} (${f.type})`,
  );
  $('filter-help').textContent = `Filter on labels (${conditions.map((c) => c.name).join(', ')})${
    described.length ? ` or fields: ${described.join(', ')}` : ''
  }. Separate filters with spaces; the same name twice means either.`;
}

/** The asked condition: the combination when two or more are ticked, else the select's choice ('' = all). */
function currentCondition() {
  const ticked = [...document.querySelectorAll('#combine input[type=checkbox]:checked')].map((box) => {
    const name = box.dataset.condition;
    const weight = document.querySelector(`#combine input[data-weight="${name}"]`)?.value || '1';
    return `${name}:${weight}`;
  });
  return ticked.length >= 2 ? ticked.join(',') : $('condition-filter').value;
}

function currentFilters() {
  return $('filters').value.split(/\s+/).filter(Boolean);
}

function updateMoreLike() {
  const button = $('more-like');
  button.textContent = `More like these (${state.liked.size})`;
  button.disabled = state.liked.size === 0;
}

function productCard(product) {
  const selected = state.query?.kind === 'product' && state.query.id === product.id;
  return h(
    'li',
    {},
    h(
      'a',
      {
        class: `card${selected ? ' selected' : ''}`,
        href: `#/product/${encode(product.id)}`,
        'data-product-id': product.id,
        title: product.title,
      },
      h('img', {
        src: `${product.imageUrl}?size=${THUMB}`,
        alt: product.title,
        loading: 'lazy',
        width: 100,
        height: 100,
      }),
      h('span', { class: 'card-title' }, product.title),
      h('span', { class: 'card-id' }, product.id),
    ),
  );
}

async function loadProducts() {
  const params = new URLSearchParams({ offset: String(state.offset), limit: String(PAGE_SIZE) });
  if (state.q) params.set('q', state.q);
  const page = await api(`/products?${params}`);
  state.total = page.total;
  $('grid').replaceChildren(...page.items.map(productCard));
  $('result-count').textContent =
    `${page.total} product${page.total === 1 ? '' : 's'}${state.q ? ` matching “${state.q}”` : ''}`;
  const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
  $('page-label').textContent = `${Math.floor(state.offset / PAGE_SIZE) + 1} / ${pages}`;
  $('prev').disabled = state.offset === 0;
  $('next').disabled = state.offset + PAGE_SIZE >= page.total;
}

function markSelected() {
  for (const card of document.querySelectorAll('.card')) {
    card.classList.toggle(
      'selected',
      state.query?.kind === 'product' && card.dataset.productId === state.query.id,
    );
  }
}

// --------------------------------------------------------------------------------------------------- neighbours

function chips(attributes) {
  return Object.entries(attributes)
    .filter(([, values]) => values.length > 0)
    .map(([condition, values]) =>
      h('span', { class: 'chip' }, h('b', {}, condition), ' ', values.join(', ')),
    );
}

function renderQuery(product, imageSrc) {
  const box = $('query');
  box.hidden = false;
  box.replaceChildren(
    h(
      'div',
      { class: 'query' },
      h('img', { src: imageSrc, alt: product ? product.title : 'Uploaded photo', width: 180, height: 180 }),
      h(
        'div',
        {},
        h('p', { class: 'eyebrow' }, product ? `Product ${product.id}` : 'Your photo'),
        h('h1', { id: 'query-title' }, product ? product.title : 'Products similar to your photo'),
        product
          ? h('div', { class: 'chips' }, chips(product.attributes))
          : h('p', {}, 'Embedded on the fly by the model.'),
      ),
    ),
  );
}

function maskStrip(mask) {
  const max = Math.max(mask.maxWeight, 1e-9);
  return h(
    'div',
    {
      class: 'mask',
      title: `Mask: ${mask.keptDims} of ${mask.totalDims} dims kept, ≈${mask.effectiveDims.toFixed(1)} effective`,
    },
    mask.weights.map((w, dim) =>
      h('span', {
        style: { height: `${Math.max(4, (Math.abs(w) / max) * 100)}%` },
        class: w === 0 ? 'off' : '',
        title: `dim ${dim}: ${w.toFixed(3)}`,
      }),
    ),
  );
}

function dimsChart(dimensions) {
  const rows = dimensions.top
    .filter((d) => d.share > 0)
    .map((d) =>
      h(
        'div',
        {
          class: 'bar-row',
          title: `dim ${d.dim}: ${percent(d.share)} of the squared distance, mask weight ${d.maskWeight.toFixed(3)}`,
        },
        h('span', { class: 'bar-label' }, `d${d.dim}`),
        h('span', { class: 'bar' }, h('span', { style: { width: percent(d.share) } })),
        h('span', { class: 'bar-value' }, percent(d.share)),
      ),
    );
  if (dimensions.restShare > 0.005) {
    rows.push(
      h(
        'div',
        {
          class: 'bar-row rest',
          title: `the other ${dimensions.keptDims - dimensions.top.length} kept dims`,
        },
        h('span', { class: 'bar-label' }, 'rest'),
        h('span', { class: 'bar' }, h('span', { style: { width: percent(dimensions.restShare) } })),
        h('span', { class: 'bar-value' }, percent(dimensions.restShare)),
      ),
    );
  }
  if (rows.length === 0) rows.push(h('p', { class: 'muted' }, 'Identical under this condition.'));
  return h('div', { class: 'dims', 'aria-label': 'Dimensions that carry the distance' }, rows);
}

/** The row's own condition first (shared ✓ or differing ≠), then the other labels the two share. */
function attributeChips(attributes, condition) {
  if (!attributes) return null;
  const own = attributes.shared.find((s) => s.condition === condition);
  const differs = attributes.differing.find((d) => d.condition === condition);
  const ownChip = own
    ? h(
        'span',
        { class: 'chip shared', title: `both are labelled ${own.values.join(', ')}` },
        '✓ ',
        h('b', {}, condition),
        ' ',
        own.values.join(', '),
      )
    : differs
      ? h(
          'span',
          { class: 'chip differing', title: 'labels differ' },
          '≠ ',
          h('b', {}, condition),
          ` ${differs.query.join(', ')} / ${differs.neighbour.join(', ')}`,
        )
      : h(
          'span',
          { class: 'chip', title: 'one of the two has no label' },
          h('b', {}, condition),
          ' unlabelled',
        );
  const others = attributes.shared.filter((s) => s.condition !== condition);
  return h(
    'div',
    { class: 'chips small' },
    ownChip,
    others.length ? h('span', { class: 'also' }, 'also shares') : null,
    others.map((s) =>
      h(
        'span',
        { class: 'chip shared soft', title: 'shared label' },
        `${s.condition}: ${s.values.join(', ')}`,
      ),
    ),
  );
}

function otherConditions(others) {
  return h(
    'details',
    { class: 'others' },
    h('summary', {}, 'Under the other conditions'),
    h(
      'ul',
      {},
      others.map((o) =>
        h(
          'li',
          { title: `distance ${o.distance.toFixed(3)}` },
          h('span', { class: 'bar-label wide' }, o.condition),
          h('span', { class: 'bar score' }, h('span', { style: { width: percent(o.score) } })),
          h('span', { class: 'bar-value' }, percent(o.score)),
        ),
      ),
    ),
  );
}

/** Each part's share of a combined distance. */
function partsLine(parts) {
  if (!parts?.length) return null;
  return h('p', { class: 'parts' }, parts.map((p) => `${p.condition} ${percent(p.share)}`).join(' · '));
}

/** The condition an explanation is about: the part with the largest share of a combined distance. */
function leadingCondition(neighbour, condition) {
  const parts = neighbour.explanation.parts;
  if (!parts?.length) return condition;
  return parts.reduce((best, p) => (p.share > best.share ? p : best)).condition;
}

function likeBox(id) {
  const box = h('input', { type: 'checkbox', class: 'like-box', 'data-product-id': id });
  box.checked = state.liked.has(id);
  box.addEventListener('change', () => {
    if (box.checked) state.liked.add(id);
    else state.liked.delete(id);
    updateMoreLike();
  });
  return h('label', { class: 'like' }, box, 'like');
}

function neighbourCard(neighbour, condition, showHeatmap, heatmap) {
  const thumb = `${neighbour.product.imageUrl}?size=${THUMB}`;
  const image = h('img', {
    src: thumb,
    alt: neighbour.product.title,
    width: 160,
    height: 160,
    loading: 'lazy',
  });
  const useHeatmap = (on) => {
    image.src = on && neighbour.heatmapUrl ? neighbour.heatmapUrl : thumb;
    image.classList.toggle('heatmap', on);
    toggle.setAttribute('aria-pressed', String(on));
    renderHeatmapLegend(heatmap);
  };
  const toggle = neighbour.heatmapUrl
    ? h(
        'button',
        {
          type: 'button',
          class: 'heat-toggle',
          'aria-pressed': 'false',
          title: heatmap
            ? `Heat map by ${heatmap.method}: ${heatmap.legend}`
            : 'Which regions drive the distance',
          onclick: () => useHeatmap(toggle.getAttribute('aria-pressed') !== 'true'),
        },
        'Heat map',
      )
    : null;
  const card = h(
    'article',
    { class: 'neighbour', 'data-product-id': neighbour.product.id },
    h('figure', {}, image, h('figcaption', {}, `#${neighbour.rank}`), toggle),
    h('a', { class: 'n-title', href: `#/product/${encode(neighbour.product.id)}` }, neighbour.product.title),
    h(
      'div',
      { class: 'score', title: `distance ${neighbour.distance.toFixed(4)}` },
      h('span', { class: 'bar score' }, h('span', { style: { width: percent(neighbour.score) } })),
      h('span', { class: 'score-text' }, describeScore(neighbour.score)),
    ),
    partsLine(neighbour.explanation.parts),
    neighbour.explanation.closestPositive
      ? h('p', { class: 'closest' }, `Closest to ${neighbour.explanation.closestPositive.id}`)
      : null,
    dimsChart(neighbour.explanation.dimensions),
    attributeChips(neighbour.explanation.attributes, leadingCondition(neighbour, condition)),
    otherConditions(neighbour.explanation.otherConditions),
    likeBox(neighbour.product.id),
  );
  if (toggle && showHeatmap) useHeatmap(true);
  return card;
}

/** Which method draws the heat maps and what bright means, shown while heat maps are visible. */
function renderHeatmapLegend(heatmap) {
  const legend = $('heatmap-legend');
  legend.replaceChildren(
    ...(heatmap
      ? [h('strong', {}, `Heat maps: ${heatmap.method.replaceAll('-', ' ')}.`), ` ${heatmap.legend}`]
      : []),
  );
  legend.dataset.method = heatmap?.method ?? '';
  legend.hidden = !heatmap || !document.querySelector('.heat-toggle[aria-pressed="true"]');
}

function renderGroups(response) {
  const showHeatmaps = $('heatmaps').checked;
  const byName = new Map(state.conditions.map((c) => [c.name, c]));
  $('groups').replaceChildren(
    ...response.groups.map((group) => {
      const info = byName.get(group.condition);
      return h(
        'section',
        { class: 'group', 'data-condition': group.condition },
        h(
          'header',
          {},
          h('h2', {}, group.title ?? group.condition),
          info
            ? h(
                'span',
                { class: 'muted' },
                `${info.metric === 'l2' ? 'masked L2' : 'cosine'} · ${info.mask.keptDims}/${info.mask.totalDims} dims, ≈${info.mask.effectiveDims.toFixed(1)} effective`,
              )
            : null,
          info ? maskStrip(info.mask) : null,
        ),
        group.neighbours.length
          ? h(
              'div',
              { class: 'neighbours' },
              group.neighbours.map((n) => neighbourCard(n, group.condition, showHeatmaps, response.heatmap)),
            )
          : h('p', { class: 'muted' }, 'No neighbours.'),
      );
    }),
  );
  renderHeatmapLegend(response.heatmap);
}

function neighbourParams() {
  const params = new URLSearchParams({ k: $('k').value });
  const condition = currentCondition();
  if (condition) params.set('condition', condition);
  for (const filter of currentFilters()) params.append('filter', filter);
  return params;
}

/** POST /recommend from the ticked neighbours (and the product shown), under the asked condition or all of them. */
async function showMoreLike() {
  const serial = ++state.requestSerial;
  showError('');
  const positive = [...(state.query?.kind === 'product' ? [state.query.id] : []), ...state.liked];
  const condition = currentCondition() || state.conditions.map((c) => c.name).join(',');
  try {
    const response = await api('/recommend', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        positive: [...new Set(positive)].slice(0, 20),
        condition,
        k: Number($('k').value),
        filter: currentFilters(),
      }),
    });
    if (serial !== state.requestSerial) return;
    renderGroups({
      groups: [
        { condition, title: `More like these ${response.positive.length}`, neighbours: response.neighbours },
      ],
    });
  } catch (error) {
    if (serial !== state.requestSerial) return;
    showError(error.message);
  }
}

async function showQuery() {
  const serial = ++state.requestSerial;
  state.liked.clear();
  updateMoreLike();
  showError('');
  $('empty').hidden = true;
  $('controls').hidden = false;
  $('groups').classList.add('loading');
  try {
    let response;
    if (state.query.kind === 'product') {
      response = await api(`/similar/${encode(state.query.id)}?${neighbourParams()}`);
      if (serial !== state.requestSerial) return;
      renderQuery(response.query.product, `${response.query.product.imageUrl}?size=360`);
    } else {
      const form = new FormData();
      form.append('image', state.query.file);
      response = await api(`/similar?${neighbourParams()}`, { method: 'POST', body: form });
      if (serial !== state.requestSerial) return;
      renderQuery(null, URL.createObjectURL(state.query.file));
    }
    renderGroups(response);
    document.title = `dressmatch — ${response.query.product?.title ?? 'your photo'}`;
  } catch (error) {
    if (serial !== state.requestSerial) return;
    $('groups').replaceChildren();
    showError(error.message);
  } finally {
    if (serial === state.requestSerial) $('groups').classList.remove('loading');
  }
}

// ------------------------------------------------------------------------------------------------------ routing

function route() {
  const match = location.hash.match(/^#\/product\/(.+)$/);
  if (match) {
    state.query = { kind: 'product', id: decodeURIComponent(match[1]) };
    markSelected();
    void showQuery();
  } else if (state.query?.kind !== 'upload') {
    state.query = null;
    markSelected();
    $('empty').hidden = false;
    $('query').hidden = true;
    $('controls').hidden = true;
    $('groups').replaceChildren();
  }
}

function wire() {
  let debounce;
  $('search').addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      state.q = $('search').value.trim();
      state.offset = 0;
      void loadProducts().catch((error) => showError(error.message));
    }, 200);
  });
  $('search-form').addEventListener('submit', (event) => event.preventDefault());
  $('prev').addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - PAGE_SIZE);
    void loadProducts();
  });
  $('next').addEventListener('click', () => {
    state.offset += PAGE_SIZE;
    void loadProducts();
  });
  for (const id of ['k', 'condition-filter', 'filters', 'combine'])
    $(id).addEventListener('change', () => state.query && void showQuery());
  $('more-like').addEventListener('click', () => void showMoreLike());
  $('heatmaps').addEventListener('change', () => {
    for (const button of document.querySelectorAll('.heat-toggle')) {
      if ((button.getAttribute('aria-pressed') === 'true') !== $('heatmaps').checked) button.click();
    }
  });
  $('upload').addEventListener('change', () => {
    const file = $('upload').files?.[0];
    if (!file) return;
    state.query = { kind: 'upload', file };
    if (location.hash) history.pushState(null, '', location.pathname);
    markSelected();
    void showQuery();
  });
  window.addEventListener('hashchange', route);
}

async function main() {
  wire();
  await waitUntilReady();
  await Promise.all([loadConditions(), loadProducts()]);
  route();
  document.body.dataset.ready = 'true';
}

main().catch((error) => showError(error.message));
