// Time-series charts on the vendored uPlot: one chart per metric, one series per host or variant.
// Each chart is also kept in window.dockyardCharts[name] (the uPlot instance: .data holds the
// points, .series[i].label the series names) so tests and curious users can read what is drawn.

import uPlot from "./vendor/uPlot.esm.js";
import { h } from "./dom.js";

const PALETTE = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7ea4", "#57606a"];

window.dockyardCharts = window.dockyardCharts || {};

/**
 * Aligns series of (timestamps, values) on one x axis, the union of their times: uPlot draws
 * columns, and a host with no point at a time gets null there (a gap, not a zero).
 */
export function align(series) {
  const times = [...new Set(series.flatMap((s) => s.timestamps))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = series.map((s) => {
    const column = new Array(times.length).fill(null);
    s.timestamps.forEach((t, i) => { column[index.get(t)] = s.values[i]; });
    return column;
  });
  return [times, ...columns];
}

function chartWidth(holder) {
  return Math.max(260, Math.floor(holder.clientWidth || holder.parentElement?.clientWidth || 600) - 4);
}

/** A chart holder: a figure with a heading; `draw` fills it and redraws it with new series. */
export class Chart {
  constructor(name, title, unit = "") {
    this.name = name;
    this.unit = unit;
    this.plot = null;
    this.labels = [];
    this.holder = h("div", { class: "chart-canvas" });
    this.empty = h("p", { class: "muted" }, "No data points yet.");
    this.element = h(
      "figure",
      { class: "chart", "data-chart": name },
      h("figcaption", {}, h("h3", {}, title)),
      this.empty,
      this.holder,
    );
    // Follows its box's width (the window, the grid's columns, the box's first layout).
    this.resizer = new ResizeObserver(() => {
      if (this.plot && Math.abs(this.plot.width - chartWidth(this.holder)) > 2) {
        this.plot.setSize({ width: chartWidth(this.holder), height: 220 });
      }
    });
    this.resizer.observe(this.holder);
  }

  /**
   * Draws `series` ([{label, timestamps, values}]), making the plot anew when the labels change;
   * `range` ([from, to] in seconds) fixes the time axis, else it spans the points.
   */
  draw(series, range = null) {
    this.range = range;
    const labels = series.map((s) => s.label);
    const data = align(series);
    this.empty.hidden = data[0].length > 0;
    if (this.plot && labels.join("\n") === this.labels.join("\n")) {
      this.plot.setData(data);
      return;
    }
    if (this.plot) this.plot.destroy();
    this.labels = labels;
    const unit = this.unit;
    this.plot = new uPlot(
      {
        width: chartWidth(this.holder),
        height: 220,
        series: [
          { label: "time" },
          ...labels.map((label, i) => ({
            label,
            stroke: PALETTE[i % PALETTE.length],
            width: 2,
            points: { show: true, size: 4 },
            spanGaps: true,
            value: (u, v) => (v === null || v === undefined ? "—" : `${+v.toPrecision(6)}${unit}`),
          })),
        ],
        scales: { x: { time: true, range: (u, min, max) => this.range || (min === max ? [min - 30, max + 30] : [min, max]) } },
        axes: [{}, { size: 60, values: (u, ticks) => ticks.map((v) => `${+v.toPrecision(4)}${unit}`) }],
      },
      data,
      this.holder,
    );
    window.dockyardCharts[this.name] = this.plot;
  }

  destroy() {
    this.resizer.disconnect();
    if (this.plot) this.plot.destroy();
    if (window.dockyardCharts[this.name] === this.plot) delete window.dockyardCharts[this.name];
    this.plot = null;
  }
}
