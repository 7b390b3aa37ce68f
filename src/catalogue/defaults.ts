/** The catalogue stage's defaults, in a file with no imports so that command lines can show them in --help. */

/** Where the demo catalogue is generated, and the catalogue every command reads unless told otherwise. */
export const DEMO_DATA_DIR = 'data/demo';
