// Charts of a training job's metrics as CloudWatch keeps them: one chart per metric, one series
// per host (namespace /aws/sagemaker/TrainingJobs, dimension Host = "<job>/algo-<n>").

import { cloudwatch, metricData } from "./api.js";
import { Chart } from "./charts.js";
import { h, seconds } from "./dom.js";

export const TRAINING_NAMESPACE = "/aws/sagemaker/TrainingJobs";

/**
 * The job's metrics CloudWatch lists per host: those with a dimension naming one of its hosts
 * ("<job>/algo-1"), not the job-wide series (dimension TrainingJobName) that merges them.
 */
async function listedMetrics(job) {
  const found = [];
  let NextToken;
  do {
    const page = await cloudwatch("ListMetrics", { Namespace: TRAINING_NAMESPACE, ...(NextToken ? { NextToken } : {}) });
    for (const metric of page.Metrics || []) {
      const host = (metric.Dimensions || []).find((d) => d.Value.startsWith(`${job}/`));
      if (host) found.push(metric);
    }
    NextToken = page.NextToken;
  } while (NextToken);
  return found;
}

export class MetricView {
  /** `definitions` are the job's MetricDefinitions: each gets a chart even before its first point. */
  constructor(job, definitions) {
    this.job = job;
    this.charts = new Map();
    this.grid = h("div", { class: "charts" });
    this.note = h("p", { class: "muted" });
    this.element = h("div", {}, this.note, this.grid);
    for (const d of definitions) this.chart(d.Name);
    if (!definitions.length) this.note.textContent = "This job defines no metrics (AlgorithmSpecification.MetricDefinitions).";
  }

  chart(name) {
    if (!this.charts.has(name)) {
      const chart = new Chart(name, name);
      this.charts.set(name, chart);
      this.grid.append(chart.element);
    }
    return this.charts.get(name);
  }

  /** Reads every host's raw points (period 1 s) from `start` to `end` (seconds) and redraws. */
  async refresh(start, end) {
    let metrics;
    try {
      metrics = await listedMetrics(this.job);
    } catch (error) {
      this.note.textContent = `Metrics are not available: ${error.message}`;
      return;
    }
    const queries = metrics.map((metric, i) => ({
      id: `m${i}`,
      metric: { Namespace: TRAINING_NAMESPACE, MetricName: metric.MetricName, Dimensions: metric.Dimensions },
      stat: "Average",
      period: 1,
    }));
    const results = await metricData(queries, Math.floor(start), Math.ceil(end));
    const byName = new Map();
    metrics.forEach((metric, i) => {
      const dimension = metric.Dimensions.find((d) => d.Value.startsWith(`${this.job}/`));
      const label = dimension.Value.slice(this.job.length + 1);
      const result = results[`m${i}`] || { timestamps: [], values: [] };
      const list = byName.get(metric.MetricName) || [];
      list.push({ label, timestamps: result.timestamps.map(seconds), values: result.values });
      byName.set(metric.MetricName, list);
    });
    for (const [name, series] of byName) {
      series.sort((a, b) => a.label.localeCompare(b.label, undefined, { numeric: true }));
      this.chart(name).draw(series);
    }
  }

  destroy() {
    for (const chart of this.charts.values()) chart.destroy();
  }
}
