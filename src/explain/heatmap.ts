/**
 * Turn a saliency map into a picture: the product image with the regions that drive the masked distance painted
 * over it, warmer and more opaque where the map is higher. Pure pixels in, pixels out (encoding is the caller's).
 */

/** Colour ramp from cool to hot (stop position, r, g, b), chosen to stay visible over light product photos. */
const RAMP: readonly (readonly [number, number, number, number])[] = [
  [0, 40, 20, 110],
  [0.35, 190, 35, 120],
  [0.7, 245, 125, 25],
  [1, 255, 235, 70],
];

export function rampColour(value: number): [number, number, number] {
  const v = Math.min(1, Math.max(0, Number.isFinite(value) ? value : 0));
  for (let i = 1; i < RAMP.length; i++) {
    const [end, r1, g1, b1] = RAMP[i];
    if (v <= end || i === RAMP.length - 1) {
      const [start, r0, g0, b0] = RAMP[i - 1];
      const t = (v - start) / (end - start);
      return [r0 + (r1 - r0) * t, g0 + (g1 - g0) * t, b0 + (b1 - b0) * t];
    }
  }
  return [RAMP[0][1], RAMP[0][2], RAMP[0][3]];
}

/**
 * Blend `saliency` (size×size, values in [0, 1]) over `image` (size×size RGB, floats in [0, 1], HWC) and return
 * RGB bytes. Opacity is maxOpacity × s^gamma: with gamma > 1 only the regions that matter most are painted and the
 * rest of the photo stays readable.
 */
export function overlaySaliency(
  image: ArrayLike<number>,
  saliency: ArrayLike<number>,
  size: number,
  maxOpacity = 0.75,
  gamma = 1.5,
): Uint8Array {
  const pixels = size * size;
  if (image.length !== pixels * 3)
    throw new RangeError(`image has ${image.length} values, expected ${pixels * 3}`);
  if (saliency.length !== pixels)
    throw new RangeError(`saliency has ${saliency.length} values, expected ${pixels}`);
  const out = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    const s = Math.min(1, Math.max(0, Number.isFinite(saliency[p]) ? saliency[p] : 0));
    const alpha = maxOpacity * s ** gamma;
    const colour = rampColour(s);
    for (let c = 0; c < 3; c++) {
      const photo = image[p * 3 + c] * 255;
      out[p * 3 + c] = Math.round(photo * (1 - alpha) + colour[c] * alpha);
    }
  }
  return out;
}

/**
 * Bilinear resize of a square map (from×from → to×to), sampling at pixel centres so that the map stays aligned with
 * an image resized the same way. Used to lay a low-resolution saliency map over a sharp photo.
 */
export function resizeMap(map: ArrayLike<number>, from: number, to: number): Float32Array {
  if (map.length !== from * from)
    throw new RangeError(`map has ${map.length} values, expected ${from * from}`);
  const out = new Float32Array(to * to);
  const scale = from / to;
  for (let y = 0; y < to; y++) {
    const sy = Math.min(from - 1, Math.max(0, (y + 0.5) * scale - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(from - 1, y0 + 1);
    const fy = sy - y0;
    for (let x = 0; x < to; x++) {
      const sx = Math.min(from - 1, Math.max(0, (x + 0.5) * scale - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(from - 1, x0 + 1);
      const fx = sx - x0;
      const top = map[y0 * from + x0] * (1 - fx) + map[y0 * from + x1] * fx;
      const bottom = map[y1 * from + x0] * (1 - fx) + map[y1 * from + x1] * fx;
      out[y * to + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}
