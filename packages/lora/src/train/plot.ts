// The loss curve: train loss per step and eval loss per eval against step, as a Vega-Lite spec compiled
// to Vega, rendered headless to SVG (no canvas, no browser), then to PNG by resvg.
import type { TrainHistory } from './trainer.js';

export function lossChartSpec(history: TrainHistory, title: string): Record<string, unknown> {
  const values = [
    ...history.steps.map((s) => ({ step: s.step, loss: s.loss, series: 'train' })),
    ...history.evals.map((e) => ({ step: e.step, loss: e.loss, series: 'eval' })),
  ].filter((v) => Number.isFinite(v.loss));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 640,
    height: 360,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'optimizer step' },
      y: { field: 'loss', type: 'quantitative', title: 'loss (nats/token)', scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null, scale: { domain: ['train', 'eval'] } },
    },
  };
}

/** SVG text and PNG bytes of the loss curve. */
export async function renderLossChart(history: TrainHistory, title: string): Promise<{ svg: string; png: Uint8Array }> {
  const [vega, vl, { Resvg }] = await Promise.all([import('vega'), import('vega-lite'), import('@resvg/resvg-js')]);
  const spec = vl.compile(lossChartSpec(history, title) as never).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  // resvg has no system fonts by default: load them so axis labels are drawn
  const png = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' }, fitTo: { mode: 'width', value: 1280 } }).render().asPng();
  return { svg, png };
}
