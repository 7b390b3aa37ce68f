/**
 * `metrics.png`: training curves drawn from the metrics log (vega-lite spec → vega SVG → sharp PNG), replacing
 * upstream's visdom/tensorboard dashboards with a file that can be opened anywhere.
 */
import sharp from 'sharp';
import type { TopLevelSpec } from 'vega-lite';
import type { EpochRecord, MetricsRecord, StepRecord } from './metrics.ts';

interface Point {
  x: number;
  y: number;
  series: string;
}

/** Points per chart: losses against epochs (fractional for logged steps), accuracy per condition per epoch. */
export function plotData(records: readonly MetricsRecord[]): { loss: Point[]; accuracy: Point[] } {
  const loss: Point[] = [];
  const accuracy: Point[] = [];
  for (const record of records) {
    if (record.type === 'step') {
      const r = record as StepRecord;
      loss.push({ x: r.epoch - 1 + r.step / r.steps, y: r.tripletLoss, series: 'train (step)' });
    } else if (record.type === 'epoch') {
      const r = record as EpochRecord;
      loss.push({ x: r.epoch, y: r.trainTripletLoss, series: 'train (epoch mean)' });
      accuracy.push({ x: r.epoch, y: r.trainAccuracy, series: 'train (all)' });
      if (r.val) {
        loss.push({ x: r.epoch, y: r.val.loss, series: 'val' });
        accuracy.push({ x: r.epoch, y: r.val.overall, series: 'val (all)' });
        for (const [condition, entry] of Object.entries(r.val.perCondition)) {
          accuracy.push({ x: r.epoch, y: entry.accuracy, series: `val ${condition}` });
        }
      }
    }
  }
  return { loss, accuracy };
}

export function metricsPlotSpec(records: readonly MetricsRecord[], title: string): TopLevelSpec {
  const { loss, accuracy } = plotData(records);
  const x = { field: 'x', type: 'quantitative', title: 'epoch' } as const;
  const color = { field: 'series', type: 'nominal', title: null } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    background: 'white',
    hconcat: [
      {
        title: 'triplet loss',
        width: 420,
        height: 280,
        data: { values: loss },
        mark: { type: 'line', point: false, clip: true },
        encoding: { x, y: { field: 'y', type: 'quantitative', title: 'margin ranking loss' }, color },
      },
      {
        title: 'triplet accuracy',
        width: 420,
        height: 280,
        data: { values: accuracy },
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: {
            field: 'y',
            type: 'quantitative',
            title: 'accuracy',
            scale: { zero: false },
            axis: { format: '%' },
          },
          color,
          strokeDash: {
            condition: { test: "indexof(datum.series, 'all') >= 0", value: [1, 0] },
            value: [4, 2],
          },
        },
      },
    ],
    resolve: { scale: { color: 'independent' } },
  } as TopLevelSpec;
}

/** Render the metrics plot as PNG bytes. */
export async function renderMetricsPlot(records: readonly MetricsRecord[], title: string): Promise<Buffer> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const compiled = vegaLite.compile(metricsPlotSpec(records, title)).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    const svg = await view.toSVG(1.5);
    return await sharp(Buffer.from(svg)).png().toBuffer();
  } finally {
    view.finalize();
  }
}
