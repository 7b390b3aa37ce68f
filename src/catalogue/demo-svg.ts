/**
 * Vector drawing of one synthetic dress on a stylised figure. Pure functions: parameters in, SVG text out.
 * Coordinates live in a 100×100 box; the figure stands at x = 50 from head (y ≈ 4) to feet (y ≈ 92).
 * Sizes are chosen so that every attribute still reads at 48×48 pixels (1 unit ≈ 0.5 px there).
 */
import type { Rng } from '../util/rng.ts';

export const DEMO_ATTRIBUTES = {
  color: ['black', 'white', 'red', 'pink', 'yellow', 'green', 'blue', 'purple'],
  sleeve: ['sleeveless', 'short', 'three-quarter', 'long'],
  neckline: ['v-neck', 'round', 'square', 'collar', 'off-shoulder'],
  length: ['mini', 'knee', 'midi', 'maxi'],
  pattern: ['solid', 'stripes', 'dots', 'floral', 'check'],
  silhouette: ['a-line', 'sheath', 'fit-and-flare', 'shift'],
} as const;

export type DemoCondition = keyof typeof DEMO_ATTRIBUTES;
export const DEMO_CONDITIONS = Object.keys(DEMO_ATTRIBUTES) as DemoCondition[];
export type DemoAttributes = { [C in DemoCondition]: (typeof DEMO_ATTRIBUTES)[C][number] };

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

/** Base hue/saturation/lightness ranges per colour name (hue in degrees, s and l in [0, 1]). */
const COLOR_RANGES: Record<
  DemoAttributes['color'],
  { h: [number, number]; s: [number, number]; l: [number, number] }
> = {
  black: { h: [0, 360], s: [0, 0.12], l: [0.07, 0.15] },
  white: { h: [0, 360], s: [0, 0.1], l: [0.9, 0.97] },
  red: { h: [350, 366], s: [0.7, 0.85], l: [0.4, 0.5] },
  pink: { h: [322, 338], s: [0.65, 0.85], l: [0.7, 0.8] },
  yellow: { h: [46, 56], s: [0.85, 0.95], l: [0.52, 0.6] },
  green: { h: [122, 148], s: [0.5, 0.65], l: [0.3, 0.4] },
  blue: { h: [210, 226], s: [0.65, 0.8], l: [0.38, 0.48] },
  purple: { h: [272, 288], s: [0.45, 0.6], l: [0.34, 0.44] },
};

const SKIN_TONES = ['#f6d5b8', '#eec19a', '#d9a57c', '#c08456', '#96603a', '#6e4428'];
const HAIR_COLORS = ['#1c140f', '#3b2616', '#6b4423', '#a8743f', '#d8b56e', '#7a2e1a', '#4a4a4a'];
const SHOE_COLORS = ['#1b1b1b', '#5a3a22', '#7d1f2a', '#203050', '#c8b8a0', '#444444'];

export function hslToRgb(h: number, s: number, l: number): Rgb {
  const hue = (((h % 360) + 360) % 360) / 360;
  const q = l < 0.5 ? l * (1 + s) : l + s - l * s;
  const p = 2 * l - q;
  const channel = (t: number): number => {
    let x = t;
    if (x < 0) x += 1;
    if (x > 1) x -= 1;
    if (x < 1 / 6) return p + (q - p) * 6 * x;
    if (x < 1 / 2) return q;
    if (x < 2 / 3) return p + (q - p) * (2 / 3 - x) * 6;
    return p;
  };
  return {
    r: Math.round(channel(hue + 1 / 3) * 255),
    g: Math.round(channel(hue) * 255),
    b: Math.round(channel(hue - 1 / 3) * 255),
  };
}

export function hex({ r, g, b }: Rgb): string {
  const part = (v: number) =>
    Math.max(0, Math.min(255, Math.round(v)))
      .toString(16)
      .padStart(2, '0');
  return `#${part(r)}${part(g)}${part(b)}`;
}

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return { r: a.r + (b.r - a.r) * t, g: a.g + (b.g - a.g) * t, b: a.b + (b.b - a.b) * t };
}

function distance(a: Rgb, b: Rgb): number {
  return Math.hypot(a.r - b.r, a.g - b.g, a.b - b.b);
}

function luminance({ r, g, b }: Rgb): number {
  return (0.299 * r + 0.587 * g + 0.114 * b) / 255;
}

const BLACK: Rgb = { r: 0, g: 0, b: 0 };
const WHITE: Rgb = { r: 255, g: 255, b: 255 };

/** A garment colour of the named family with lighting jitter. */
export function garmentColor(name: DemoAttributes['color'], rng: Rng): Rgb {
  const range = COLOR_RANGES[name];
  const brightness = rng.range(0.9, 1.1);
  return hslToRgb(
    rng.range(...range.h),
    rng.range(...range.s),
    Math.min(0.98, rng.range(...range.l) * brightness),
  );
}

/** Background colour far enough from the garment that its outline stays visible. */
function backgroundColor(garment: Rgb, rng: Rng): Rgb {
  let best: Rgb = WHITE;
  let bestDistance = -1;
  for (let attempt = 0; attempt < 24; attempt++) {
    const candidate = hslToRgb(rng.range(0, 360), rng.range(0, 0.45), rng.range(0.2, 0.96));
    const d = distance(candidate, garment);
    if (d > 110) return candidate;
    if (d > bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

/** A second colour for pattern elements: contrasting in lightness, sometimes tinted. */
function patternColor(garment: Rgb, rng: Rng): Rgb {
  const light = luminance(garment) < 0.55;
  const base = light ? WHITE : BLACK;
  const tint =
    rng.next() < 0.4 ? hslToRgb(rng.range(0, 360), rng.range(0.4, 0.8), light ? 0.85 : 0.18) : base;
  return mix(tint, garment, rng.range(0, 0.2));
}

export interface Point {
  x: number;
  y: number;
}

const f = (n: number): string => (Math.round(n * 100) / 100).toString();
const pt = (p: Point): string => `${f(p.x)} ${f(p.y)}`;

const HEM_Y: Record<DemoAttributes['length'], [number, number]> = {
  mini: [52, 55],
  knee: [64.5, 67.5],
  midi: [75, 78],
  maxi: [86, 88],
};

const SLEEVE_REACH: Record<DemoAttributes['sleeve'], number> = {
  sleeveless: 0,
  short: 0.3,
  'three-quarter': 0.7,
  long: 1,
};

const WAIST_Y = 40;
const SHOULDER_Y = 20.5;
const ARMPIT_Y = 27;

function fabricPattern(attributes: DemoAttributes, garment: Rgb, rng: Rng): string {
  const base = hex(garment);
  const accent = patternColor(garment, rng);
  const second = hex(accent);
  const dx = f(rng.range(0, 10));
  const dy = f(rng.range(0, 10));
  switch (attributes.pattern) {
    case 'solid':
      return `<pattern id="fabric" patternUnits="userSpaceOnUse" width="10" height="10"><rect width="10" height="10" fill="${base}"/></pattern>`;
    case 'stripes': {
      const period = rng.range(7, 9);
      const width = period * rng.range(0.34, 0.42);
      const angle = rng.pick([0, 90, 45, -45]) + rng.range(-8, 8);
      return (
        `<pattern id="fabric" patternUnits="userSpaceOnUse" x="${dx}" y="${dy}" width="${f(period)}" height="${f(period)}" patternTransform="rotate(${f(angle)})">` +
        `<rect width="${f(period)}" height="${f(period)}" fill="${base}"/><rect width="${f(period)}" height="${f(width)}" fill="${second}"/></pattern>`
      );
    }
    case 'dots': {
      // A square grid of small, well separated dots: staggered or dense dots alias into a checkerboard at 48 px.
      const size = rng.range(10, 11.5);
      const radius = rng.range(1.9, 2.3);
      return (
        `<pattern id="fabric" patternUnits="userSpaceOnUse" x="${dx}" y="${dy}" width="${f(size)}" height="${f(size)}">` +
        `<rect width="${f(size)}" height="${f(size)}" fill="${base}"/>` +
        `<circle cx="${f(size / 2)}" cy="${f(size / 2)}" r="${f(radius)}" fill="${second}"/></pattern>`
      );
    }
    case 'floral': {
      // Large multi-coloured blossoms with warm centres and leaves: colourful, irregular blobs even at 48 px.
      const s = rng.range(15, 17);
      const light = luminance(garment) < 0.5;
      const petalA = hex(
        hslToRgb(
          rng.range(0, 360),
          rng.range(0.55, 0.85),
          light ? rng.range(0.7, 0.85) : rng.range(0.25, 0.45),
        ),
      );
      const petalB = hex(
        hslToRgb(
          rng.range(0, 360),
          rng.range(0.55, 0.85),
          light ? rng.range(0.65, 0.8) : rng.range(0.3, 0.5),
        ),
      );
      const centre = hex(hslToRgb(rng.range(35, 60), 0.9, light ? 0.55 : 0.4));
      const leaf = hex(hslToRgb(rng.range(90, 140), 0.55, light ? 0.55 : 0.28));
      const turn = rng.range(0, Math.PI);
      const flower = (cx: number, cy: number, r: number, color: string): string => {
        const petals = Array.from({ length: 5 }, (_, k) => {
          const a = (k * 2 * Math.PI) / 5 + turn;
          return `<circle cx="${f(cx + Math.cos(a) * r * 1.1)}" cy="${f(cy + Math.sin(a) * r * 1.1)}" r="${f(r)}" fill="${color}"/>`;
        }).join('');
        return `${petals}<circle cx="${f(cx)}" cy="${f(cy)}" r="${f(r * 0.7)}" fill="${centre}"/>`;
      };
      return (
        `<pattern id="fabric" patternUnits="userSpaceOnUse" x="${dx}" y="${dy}" width="${f(s)}" height="${f(s)}">` +
        `<rect width="${f(s)}" height="${f(s)}" fill="${base}"/>` +
        `<ellipse cx="${f(s * 0.62)}" cy="${f(s * 0.2)}" rx="2.4" ry="1.1" fill="${leaf}" transform="rotate(30 ${f(s * 0.62)} ${f(s * 0.2)})"/>` +
        `<ellipse cx="${f(s * 0.2)}" cy="${f(s * 0.7)}" rx="2.4" ry="1.1" fill="${leaf}" transform="rotate(-40 ${f(s * 0.2)} ${f(s * 0.7)})"/>` +
        flower(s * 0.27, s * 0.3, 2.2, petalA) +
        flower(s * 0.74, s * 0.72, 1.9, petalB) +
        `</pattern>`
      );
    }
    case 'check': {
      // Gingham: two crossing sets of translucent bands, read as a grid of lines even at 48 px.
      const size = rng.range(10, 12);
      const band = size * rng.range(0.42, 0.5);
      return (
        `<pattern id="fabric" patternUnits="userSpaceOnUse" x="${dx}" y="${dy}" width="${f(size)}" height="${f(size)}" patternTransform="rotate(${f(rng.range(-4, 4))})">` +
        `<rect width="${f(size)}" height="${f(size)}" fill="${base}"/>` +
        `<rect width="${f(band)}" height="${f(size)}" fill="${second}" fill-opacity="0.55"/>` +
        `<rect width="${f(size)}" height="${f(band)}" fill="${second}" fill-opacity="0.55"/></pattern>`
      );
    }
  }
}

interface Arm {
  shoulder: Point;
  elbow: Point;
  wrist: Point;
}

function arm(side: -1 | 1, angle: number, bend: number): Arm {
  const shoulder = { x: 50 + side * 11.5, y: 22.5 };
  const a = (angle * Math.PI) / 180;
  const b = ((angle - bend) * Math.PI) / 180;
  const elbow = { x: shoulder.x + side * 16 * Math.sin(a), y: shoulder.y + 16 * Math.cos(a) };
  const wrist = { x: elbow.x + side * 16 * Math.sin(b), y: elbow.y + 16 * Math.cos(b) };
  return { shoulder, elbow, wrist };
}

/** Point at `fraction` of the arm's length (0 = shoulder, 1 = wrist). */
function along(armPose: Arm, fraction: number): Point {
  if (fraction <= 0.5) {
    const t = fraction / 0.5;
    return {
      x: armPose.shoulder.x + (armPose.elbow.x - armPose.shoulder.x) * t,
      y: armPose.shoulder.y + (armPose.elbow.y - armPose.shoulder.y) * t,
    };
  }
  const t = (fraction - 0.5) / 0.5;
  return {
    x: armPose.elbow.x + (armPose.wrist.x - armPose.elbow.x) * t,
    y: armPose.elbow.y + (armPose.wrist.y - armPose.elbow.y) * t,
  };
}

function armPath(armPose: Arm, from: number, to: number): string {
  const start = along(armPose, from);
  const end = along(armPose, to);
  return from < 0.5 && to > 0.5
    ? `M${pt(start)} L${pt(armPose.elbow)} L${pt(end)}`
    : `M${pt(start)} L${pt(end)}`;
}

/** Outline of the dress body (without sleeves) as an SVG path, and the half width of its hem. */
function dressPath(attributes: DemoAttributes, hemY: number, rng: Rng): { d: string; hemHalf: number } {
  const offShoulder = attributes.neckline === 'off-shoulder';
  const topY = offShoulder ? 26 : SHOULDER_Y;
  const shoulder = offShoulder ? 14.5 : attributes.sleeve === 'sleeveless' ? 9.5 : 12.5;
  const collarTop = attributes.neckline === 'collar' ? 18.5 : topY;
  const skirt = hemY - WAIST_Y;
  const right: string[] = [];
  const left: string[] = [];
  const side = (s: -1 | 1, x: number) => f(50 + s * x);
  let hemHalf: number;
  switch (attributes.silhouette) {
    case 'shift': {
      hemHalf = 12.8 + 0.05 * skirt;
      for (const s of [1, -1] as const) {
        const seq = [`L${side(s, 12.3)} ${f(ARMPIT_Y)}`, `L${side(s, hemHalf)} ${f(hemY)}`];
        (s === 1 ? right : left).push(...(s === 1 ? seq : [...seq].reverse()));
      }
      break;
    }
    case 'sheath': {
      hemHalf = 9.8 + 0.02 * skirt;
      right.push(
        `L${side(1, 11)} ${f(ARMPIT_Y)}`,
        `Q${side(1, 9.2)} 34 ${side(1, 8.5)} ${f(WAIST_Y)}`,
        `Q${side(1, 10.8)} 45 ${side(1, 10.5)} 50`,
        `L${side(1, hemHalf)} ${f(hemY)}`,
      );
      left.push(
        `L${side(-1, 10.5)} 50`,
        `Q${side(-1, 10.8)} 45 ${side(-1, 8.5)} ${f(WAIST_Y)}`,
        `Q${side(-1, 9.2)} 34 ${side(-1, 11)} ${f(ARMPIT_Y)}`,
      );
      break;
    }
    case 'a-line': {
      hemHalf = 10 + 0.42 * skirt;
      right.push(
        `L${side(1, 11)} ${f(ARMPIT_Y)}`,
        `Q${side(1, 9.2)} 34 ${side(1, 8.5)} ${f(WAIST_Y)}`,
        `L${side(1, hemHalf)} ${f(hemY)}`,
      );
      left.push(`L${side(-1, 8.5)} ${f(WAIST_Y)}`, `Q${side(-1, 9.2)} 34 ${side(-1, 11)} ${f(ARMPIT_Y)}`);
      break;
    }
    case 'fit-and-flare': {
      hemHalf = 14 + 0.52 * skirt;
      const bell = hemY - skirt * 0.55;
      right.push(
        `L${side(1, 11)} ${f(ARMPIT_Y)}`,
        `Q${side(1, 8)} 34 ${side(1, 7)} ${f(WAIST_Y)}`,
        `C${side(1, 8)} ${f(WAIST_Y + 3)} ${side(1, hemHalf)} ${f(bell)} ${side(1, hemHalf)} ${f(hemY)}`,
      );
      left.push(
        `C${side(-1, hemHalf)} ${f(bell)} ${side(-1, 8)} ${f(WAIST_Y + 3)} ${side(-1, 7)} ${f(WAIST_Y)}`,
        `Q${side(-1, 8)} 34 ${side(-1, 11)} ${f(ARMPIT_Y)}`,
      );
      break;
    }
  }
  // Hem: straight, except the full skirt of a fit-and-flare, which falls in soft folds.
  let hem = `L${side(-1, hemHalf)} ${f(hemY)}`;
  if (attributes.silhouette === 'fit-and-flare') {
    const folds = rng.int(4, 6);
    const width = (2 * hemHalf) / folds;
    hem = Array.from({ length: folds }, (_, k) => {
      const x0 = 50 + hemHalf - k * width;
      return `Q${f(x0 - width / 2)} ${f(hemY + 2.2)} ${f(x0 - width)} ${f(hemY)}`;
    }).join(' ');
  }
  const top =
    attributes.neckline === 'collar'
      ? `M${side(-1, shoulder)} ${f(topY)} L${side(-1, 4)} ${f(topY)} L${side(-1, 3.2)} ${f(collarTop)} L${side(1, 3.2)} ${f(collarTop)} L${side(1, 4)} ${f(topY)} L${side(1, shoulder)} ${f(topY)}`
      : `M${side(-1, shoulder)} ${f(topY)} L${side(1, shoulder)} ${f(topY)}`;
  return { d: `${top} ${right.join(' ')} ${hem} ${left.join(' ')} Z`, hemHalf };
}

function neckline(attributes: DemoAttributes, skin: string, garment: Rgb, rng: Rng): string {
  switch (attributes.neckline) {
    case 'round':
      return `<path d="M44 ${SHOULDER_Y} Q50 ${f(SHOULDER_Y + rng.range(10, 12))} 56 ${SHOULDER_Y} Z" fill="${skin}"/>`;
    case 'v-neck': {
      const depth = rng.range(11, 13.5);
      return `<path d="M44.5 ${SHOULDER_Y} L55.5 ${SHOULDER_Y} L50 ${f(SHOULDER_Y + depth)} Z" fill="${skin}"/>`;
    }
    case 'square': {
      const depth = rng.range(6.5, 8);
      return `<rect x="43.5" y="${SHOULDER_Y}" width="13" height="${f(depth)}" fill="${skin}"/>`;
    }
    case 'collar': {
      const light = luminance(garment) < 0.6;
      const color = hex(
        light
          ? mix(WHITE, garment, rng.range(0, 0.1))
          : mix(hslToRgb(rng.range(0, 360), 0.3, 0.15), garment, 0.1),
      );
      const edge = hex(mix(light ? WHITE : BLACK, garment, 0.5));
      const flap = (s: -1 | 1) =>
        `<path d="M50 23.5 L${f(50 + s * 3.2)} 18.3 L${f(50 + s * 8.5)} 19.8 L${f(50 + s * 6.5)} 28.5 Z" fill="${color}" stroke="${edge}" stroke-width="0.5"/>`;
      return flap(-1) + flap(1);
    }
    case 'off-shoulder':
      return '';
  }
}

/** Sleeve strokes over the arms (none when sleeveless). */
function sleevePaths(attributes: DemoAttributes, arms: Arm[]): { path: string; width: number }[] {
  const reach = SLEEVE_REACH[attributes.sleeve];
  if (reach === 0) return [];
  const start = attributes.neckline === 'off-shoulder' ? 0.12 : 0;
  const width = attributes.sleeve === 'short' ? 8 : 7;
  return arms.map((pose) => ({ path: armPath(pose, start, reach), width }));
}

/**
 * Ground-truth regions for checking explanations (bench/explain-faithfulness.ts). The order is the bit order of
 * the part masks: bit k of a mask pixel is set when the pixel belongs to DEMO_PARTS[k]. Parts overlap (a sleeve is
 * both garment and sleeves).
 */
export const DEMO_PARTS = ['garment', 'sleeves', 'neckline', 'hem', 'outline'] as const;
export type DemoPart = (typeof DEMO_PARTS)[number];

/** Which parts each condition is about: what its heat map should light up. */
export const DEMO_CONDITION_PARTS: Record<DemoCondition, DemoPart[]> = {
  color: ['garment'],
  pattern: ['garment'],
  sleeve: ['sleeves'],
  neckline: ['neckline'],
  length: ['hem'],
  silhouette: ['outline'],
};

/** The geometry of a drawn scene that the part masks are made from (figure coordinates, before the transform). */
interface SceneShapes {
  attributes: DemoAttributes;
  dress: string;
  hemY: number;
  hemHalf: number;
  arms: Arm[];
  sleeves: { path: string; width: number }[];
  /** The neckline's SVG elements as drawn (skin cut-outs, or the collar's flaps). */
  neckline: string;
}

const ON = '#ffffff';
const OFF = '#000000';

/** The same elements painted in one flat colour (fills and strokes; pattern and shade references included). */
function repaint(elements: string, colour: string): string {
  return elements.replace(/(fill|stroke)="(#[0-9a-f]{6}|url\(#\w+\))"/g, `$1="${colour}"`);
}

function sleeveStrokes(shapes: SceneShapes, colour: string): string {
  return shapes.sleeves
    .map(
      ({ path, width }) =>
        `<path d="${path}" stroke="${colour}" stroke-width="${width}" stroke-linecap="butt" stroke-linejoin="round" fill="none"/>`,
    )
    .join('');
}

const PART_DRAWERS: Record<DemoPart, (shapes: SceneShapes) => string> = {
  // The dress and its sleeves, without the skin showing through the neckline (a collar is garment).
  garment: (s) =>
    `<path d="${s.dress}" fill="${ON}"/>${sleeveStrokes(s, ON)}` +
    repaint(s.neckline, s.attributes.neckline === 'collar' ? ON : OFF),
  // Arms and hands where visible (the dress hides the upper arm's inner edge), then the sleeves over them.
  sleeves: (s) =>
    s.arms
      .map(
        (pose) =>
          `<path d="${armPath(pose, 0, 1)}" stroke="${ON}" stroke-width="4.8" stroke-linecap="round" stroke-linejoin="round" fill="none"/>` +
          `<circle cx="${f(pose.wrist.x)}" cy="${f(pose.wrist.y + 1.2)}" r="2.6" fill="${ON}"/>`,
      )
      .join('') + `<path d="${s.dress}" fill="${OFF}"/>${sleeveStrokes(s, ON)}`,
  // Shoulders to the deepest neckline (v-neck, 33.5): every neckline style is drawn inside this ellipse.
  neckline: () => `<ellipse cx="50" cy="25.5" rx="15" ry="9.5" fill="${ON}"/>`,
  // A band of ±5 units around the hem line, 2 units wider than the hem on each side (folds reach 2.2 below).
  hem: (s) =>
    `<rect x="${f(50 - s.hemHalf - 2)}" y="${f(s.hemY - 5)}" width="${f(2 * s.hemHalf + 4)}" height="10" fill="${ON}"/>`,
  // The dress outline, 5 units wide (about 2.5 px at 48 px).
  outline: (s) =>
    `<path d="${s.dress}" fill="none" stroke="${ON}" stroke-width="5" stroke-linejoin="round"/>`,
};

function partSvg(elements: string, size: number, transform: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 100 100">` +
    `<rect width="100" height="100" fill="${OFF}"/><g transform="${transform}">${elements}</g></svg>`
  );
}

export interface DressScene {
  attributes: DemoAttributes;
  svg: string;
  /** One SVG per part, white where the part is and black elsewhere, aligned with `svg` (see DEMO_PARTS). */
  parts: Record<DemoPart, string>;
  /** Standard deviation of the pixel noise to add after rasterising (0-255 scale). */
  noise: number;
}

/** The figure under the dress: legs and shoes, arms and hands, neck and chest, head and hair. */
function drawFigure(look: {
  skin: string;
  hair: string;
  shoes: string;
  legSpread: number;
  arms: Arm[];
  bun: boolean;
}): string[] {
  const { skin, hair, shoes, legSpread, arms, bun } = look;
  const body: string[] = [];
  for (const s of [-1, 1] as const) {
    const hipX = 50 + s * 4.3;
    const ankleX = 50 + s * (4.3 + legSpread);
    body.push(
      `<path d="M${f(hipX)} 50 L${f(ankleX)} 88.5" stroke="${skin}" stroke-width="5.4" stroke-linecap="round"/>`,
    );
    body.push(`<ellipse cx="${f(ankleX + s * 1.2)}" cy="90.3" rx="3.8" ry="2.1" fill="${shoes}"/>`);
  }
  for (const pose of arms) {
    body.push(
      `<path d="${armPath(pose, 0, 1)}" stroke="${skin}" stroke-width="4.8" stroke-linecap="round" stroke-linejoin="round" fill="none"/>`,
    );
    body.push(`<circle cx="${f(pose.wrist.x)}" cy="${f(pose.wrist.y + 1.2)}" r="2.6" fill="${skin}"/>`);
  }
  // Neck, shoulders and chest (visible through necklines and around straps).
  body.push(`<rect x="47.3" y="13.5" width="5.4" height="9" fill="${skin}"/>`);
  body.push(`<path d="M37.5 21 Q50 18 62.5 21 L61 30 L39 30 Z" fill="${skin}"/>`);
  body.push(`<circle cx="50" cy="9.8" r="5.6" fill="${skin}"/>`);
  body.push(
    `<path d="M44.2 10.5 Q44 3.4 50 3.6 Q56 3.4 55.8 10.5 Q53 6.8 50 7.2 Q47 6.8 44.2 10.5 Z" fill="${hair}"/>`,
  );
  if (bun) body.push(`<circle cx="50" cy="3.4" r="2.4" fill="${hair}"/>`);
  return body;
}

/** Compose one scene: figure, dress and background, all varied by `rng`. */
export function drawDress(attributes: DemoAttributes, size: number, rng: Rng): DressScene {
  const garment = garmentColor(attributes.color, rng);
  const skin = rng.pick(SKIN_TONES);
  const hair = rng.pick(HAIR_COLORS);
  const shoes = rng.pick(SHOE_COLORS);
  const background = backgroundColor(garment, rng);
  const gradient = rng.next() < 0.5;
  const background2 = gradient ? backgroundColor(garment, rng) : background;
  const hemY = rng.range(...HEM_Y[attributes.length]);
  const scale = rng.range(0.84, 0.98);
  const dx = rng.range(-5, 5);
  const dy = rng.range(-3, 3);
  const rotation = rng.range(-5, 5);
  const pose = rng.range(7, 30);
  const arms = ([-1, 1] as const).map((s) => arm(s, pose + rng.range(-4, 4), rng.range(0, 14)));
  const legSpread = rng.range(0, 3);
  const edge = hex(mix(garment, luminance(garment) > 0.5 ? BLACK : WHITE, 0.35));
  const shadeAngle = rng.range(0, 360);
  const gx = 50 + 50 * Math.cos((shadeAngle * Math.PI) / 180);
  const gy = 50 + 50 * Math.sin((shadeAngle * Math.PI) / 180);

  const defs =
    `<defs>${fabricPattern(attributes, garment, rng)}` +
    `<linearGradient id="bg" x1="0" y1="0" x2="${f(rng.range(0, 1))}" y2="1">` +
    `<stop offset="0" stop-color="${hex(background)}"/><stop offset="1" stop-color="${hex(background2)}"/></linearGradient>` +
    `<linearGradient id="shade" gradientUnits="userSpaceOnUse" x1="${f(100 - gx)}" y1="${f(100 - gy)}" x2="${f(gx)}" y2="${f(gy)}">` +
    `<stop offset="0" stop-color="#ffffff" stop-opacity="${f(rng.range(0, 0.14))}"/>` +
    `<stop offset="1" stop-color="#000000" stop-opacity="${f(rng.range(0.05, 0.22))}"/></linearGradient></defs>`;

  const bun = rng.next() < 0.5;
  const body = drawFigure({ skin, hair, shoes, legSpread, arms, bun });

  // The dress, its lighting, a darker outline and the waist seam of a fit-and-flare.
  const { d: dress, hemHalf } = dressPath(attributes, hemY, rng);
  body.push(`<path d="${dress}" fill="url(#fabric)"/>`);
  body.push(
    `<path d="${dress}" fill="url(#shade)" stroke="${edge}" stroke-width="0.6" stroke-linejoin="round"/>`,
  );
  if (attributes.silhouette === 'fit-and-flare') {
    body.push(
      `<rect x="42.6" y="${f(WAIST_Y - 1.6)}" width="14.8" height="3.2" rx="0.8" fill="${hex(mix(garment, BLACK, 0.35))}"/>`,
    );
  }
  // Sleeves over the arms.
  const sleeves = sleevePaths(attributes, arms);
  for (const { path, width } of sleeves) {
    for (const paint of ['url(#fabric)', 'url(#shade)']) {
      body.push(
        `<path d="${path}" stroke="${paint}" stroke-width="${width}" stroke-linecap="butt" stroke-linejoin="round" fill="none"/>`,
      );
    }
  }
  const neck = neckline(attributes, skin, garment, rng);
  body.push(neck);

  const transform = `translate(${f(50 + dx)} ${f(50 + dy)}) rotate(${f(rotation)}) scale(${f(scale)}) translate(-50 -50)`;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 100 100">${defs}` +
    `<rect width="100" height="100" fill="url(#bg)"/><g transform="${transform}">${body.join('')}</g></svg>`;
  const shapes: SceneShapes = { attributes, dress, hemY, hemHalf, arms, sleeves, neckline: neck };
  const parts = Object.fromEntries(
    DEMO_PARTS.map((part) => [part, partSvg(PART_DRAWERS[part](shapes), size, transform)]),
  ) as Record<DemoPart, string>;
  return { attributes, svg, parts, noise: rng.range(2, 8) };
}
