/**
 * Progress bars of a build, shared by the index job and refresh's publish: one bar for embedding, one per condition
 * while building graphs, one for the recall check (which counts queries over all conditions).
 */
import type { ProgressFactory, RateProgress } from '../util/progress.ts';
import type { BuildProgress } from './build.ts';

export interface StageBars {
  onProgress: (event: BuildProgress) => void;
  stop: () => void;
}

export function stageBars(createProgress: ProgressFactory): StageBars {
  let bar = null as RateProgress | null;
  let barKey = '';
  const onProgress = (event: BuildProgress): void => {
    const key = event.stage === 'index' ? `index:${event.condition}` : event.stage;
    if (key !== barKey || !bar) {
      bar?.stop();
      barKey = key;
      const label =
        event.stage === 'embed'
          ? 'embedding'
          : event.stage === 'index'
            ? `HNSW ${event.condition}`
            : 'recall check';
      const unit = event.stage === 'embed' ? 'images' : event.stage === 'index' ? 'points' : 'queries';
      bar = createProgress(label, unit);
    }
    bar.update(event.done, event.total);
  };
  return { onProgress, stop: () => bar?.stop() };
}
