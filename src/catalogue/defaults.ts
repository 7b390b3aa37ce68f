/** The catalogue stage's defaults, in a file with no imports so that command lines can show them in --help. */

/** Where the demo catalogue is generated, and the catalogue every command reads unless told otherwise. */
export const DEMO_DATA_DIR = 'data/demo';

/** The demo catalogue's size, seed and image side (demo-data's flags; the generator's own defaults). */
export const DEMO_DEFAULTS = { count: 3000, seed: 7, imageSize: 128 } as const;
