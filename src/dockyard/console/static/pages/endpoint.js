// One endpoint: status, variants and their instances, charts of invocations/s, latency
// percentiles and errors, the recent invocations' status codes; scale, update and delete.

import { dockyard, listAll, metricData, sagemaker } from "../api.js";
import { Chart } from "../charts.js";
import { confirmAction, errorNote, facts, fill, formatTime, h, section, seconds, statusBadge, table } from "../dom.js";

const NAMESPACE = "AWS/SageMaker";
const WINDOW = 3600; // the charts show the last hour …
const PERIOD = 10; // … in 10-second buckets
const REFRESH_MS = 3000;

function dimensions(endpoint, variant) {
  return [{ Name: "EndpointName", Value: endpoint }, { Name: "VariantName", Value: variant }];
}

/** The queries of every chart, per variant: [{id, chart, label, scale, query}]. */
function chartQueries(endpoint, variants) {
  const out = [];
  variants.forEach((variant, v) => {
    const metric = (name) => ({ Namespace: NAMESPACE, MetricName: name, Dimensions: dimensions(endpoint, variant) });
    const label = (what) => (variants.length > 1 ? `${variant} ${what}` : what);
    out.push({ id: `inv${v}`, chart: "Invocations", label: label("invocations/s"), scale: 1 / PERIOD, metric: metric("Invocations"), stat: "Sum" });
    for (const p of ["p50", "p90", "p99"]) {
      // ModelLatency is kept in microseconds, as SageMaker publishes it; the chart says ms.
      out.push({ id: `lat${p}${v}`, chart: "ModelLatency", label: label(p), scale: 1 / 1000, metric: metric("ModelLatency"), stat: p });
    }
    out.push({ id: `e4${v}`, chart: "Errors", label: label("4XX"), scale: 1, metric: metric("Invocation4XXErrors"), stat: "Sum" });
    out.push({ id: `e5${v}`, chart: "Errors", label: label("5XX"), scale: 1, metric: metric("Invocation5XXErrors"), stat: "Sum" });
  });
  return out.map((q) => ({ ...q, period: PERIOD }));
}

const RECENT_ROWS = 20;

/** One variant's instances: where each is in its life, whether the router sends it requests. */
function instanceTable(variant, instances) {
  return table([
    { label: "Instance", cell: (i) => i.InstanceName },
    { label: "State", cell: (i) => i.State },
    // A mark and a word: the colour alone would say nothing to some readers.
    { label: "Healthy", cell: (i) => h("span", { class: `health ${i.Healthy ? "ok" : "bad"}`, "data-healthy": String(i.Healthy) },
      i.Healthy ? "✓ healthy" : "✗ not in rotation") },
    { label: "In flight", cell: (i) => String(i.InFlight) },
    { label: "Served", cell: (i) => String(i.Served) },
    { label: "Started", cell: (i) => formatTime(i.StartedAt) },
    { label: "Node", cell: (i) => i.Node || "—" },
  ], instances, `Instances of ${variant}`);
}

/** A table of instances per variant, in the order DescribeEndpoint lists the variants (a
 *  variant only being deployed, during an update, comes after them). */
function instanceTables(variantNames, instances) {
  if (!instances.length) return h("p", { class: "muted" }, "No instances running.");
  const names = [...new Set([...variantNames, ...instances.map((i) => i.VariantName)])];
  return names
    .map((variant) => [variant, instances.filter((i) => i.VariantName === variant)])
    .filter(([, rows]) => rows.length)
    .map(([variant, rows]) => instanceTable(variant, rows));
}

/** The recent invocations: how many answered each status code, and the newest few. */
function recentInvocations(invocations) {
  if (!invocations.length) return h("p", { class: "muted" }, "No invocations yet.");
  const counts = new Map();
  for (const i of invocations) counts.set(i.StatusCode, (counts.get(i.StatusCode) || 0) + 1);
  const codes = [...counts.entries()].sort(([a], [b]) => a - b);
  const newest = [...invocations].sort((a, b) => b.Time - a.Time).slice(0, RECENT_ROWS);
  return h("div", {},
    h("ul", { class: "status-codes", "aria-label": "Status codes" }, codes.map(([code, count]) =>
      // 0: the instance gave no answer at all.
      h("li", { "data-code": code, class: code >= 200 && code < 400 ? "ok" : "bad" },
        h("strong", {}, code === 0 ? "no answer" : String(code)), ` × ${count}`))),
    table([
      { label: "Time", cell: (i) => formatTime(i.Time) },
      { label: "Variant", cell: (i) => i.VariantName },
      { label: "Instance", cell: (i) => i.InstanceName },
      { label: "Status", cell: (i) => (i.StatusCode === 0 ? "no answer" : String(i.StatusCode)) },
      { label: "Model latency", cell: (i) => (i.ModelLatencyMicroseconds === undefined ? "—" : `${(i.ModelLatencyMicroseconds / 1000).toFixed(1)} ms`) },
    ], newest, `The newest ${newest.length} of ${invocations.length}`));
}

export async function render(main, [name], ctx) {
  document.title = `${name} · Endpoints · dockyard`;
  let endpoint = await sagemaker("DescribeEndpoint", { EndpointName: name });
  const problem = h("div");
  const summary = h("div", { class: "summary" });
  const variants = h("div");
  const instances = h("div", { id: "endpoint-instances", class: "instances" });
  const manage = h("div");
  const recent = h("div", { id: "recent-invocations" });
  const total = h("output", { id: "invocations-total" }, "0");
  const charts = {
    Invocations: new Chart("Invocations", "Invocations per second"),
    ModelLatency: new Chart("ModelLatency", "Model latency (ms)", " ms"),
    Errors: new Chart("Errors", "Errors (per 10 s)"),
  };

  async function act(title, text, label, work) {
    if (!(await confirmAction(title, text, label))) return;
    try {
      await work();
      problem.replaceChildren();
      await refresh();
    } catch (error) {
      problem.replaceChildren(errorNote(error));
    }
  }

  let drawnVariants = null;
  function drawVariants() {
    const list = endpoint.ProductionVariants || [];
    // Redrawn only when they change, so a count being typed into "Scale to" is not reset.
    const seen = JSON.stringify(list);
    if (seen === drawnVariants) return;
    drawnVariants = seen;
    variants.replaceChildren(list.length ? table([
      { label: "Variant", cell: (v) => v.VariantName },
      { label: "Status", cell: (v) => (v.VariantStatus || []).map((s) => s.Status).join(", ") || "—" },
      { label: "Instances (current / desired)", cell: (v) => h("span", { class: v.CurrentInstanceCount === v.DesiredInstanceCount ? "" : "warn" }, `${v.CurrentInstanceCount ?? "—"} / ${v.DesiredInstanceCount ?? "—"}`) },
      { label: "Weight (current / desired)", cell: (v) => `${v.CurrentWeight ?? "—"} / ${v.DesiredWeight ?? "—"}` },
      { label: "Image", cell: (v) => (v.DeployedImages || []).map((i) => i.SpecifiedImage).join(", ") || "—" },
      { label: "Scale to", cell: (v) => {
        const input = h("input", { type: "number", min: "1", value: String(v.DesiredInstanceCount ?? v.CurrentInstanceCount ?? 1), "aria-label": `Instance count of ${v.VariantName}`, class: "count-input" });
        const go = () => {
          const count = Number(input.value);
          act("Scale variant?", `Set ${v.VariantName} of ${name} to ${count} instance(s)?`, "Scale", () =>
            sagemaker("UpdateEndpointWeightsAndCapacities", {
              EndpointName: name,
              DesiredWeightsAndCapacities: [{ VariantName: v.VariantName, DesiredInstanceCount: count }],
            }));
        };
        return h("span", { class: "inline-form" }, input, h("button", { type: "button", onclick: go }, "Scale"));
      } },
    ], list) : h("p", { class: "muted" }, "No variants yet."));
  }

  function drawSummary() {
    fill(summary,
      h("p", { class: "status-line" }, statusBadge(endpoint.EndpointStatus)),
      endpoint.FailureReason ? h("div", { class: "failure", role: "alert" }, h("strong", {}, "Failure reason: "), endpoint.FailureReason) : null,
      facts([
        ["Configuration", h("a", { href: `/console/endpoint-configs/${encodeURIComponent(endpoint.EndpointConfigName)}` }, endpoint.EndpointConfigName)],
        ["Created", formatTime(endpoint.CreationTime)],
        ["Last modified", formatTime(endpoint.LastModifiedTime)],
        ["Invocations in the last hour", total],
      ]),
    );
  }

  async function drawManage() {
    const configs = await listAll("SageMaker", "ListEndpointConfigs", { MaxResults: 100 }, "EndpointConfigs");
    const select = h("select", { id: "update-config" }, configs.map((c) =>
      h("option", { value: c.EndpointConfigName, selected: c.EndpointConfigName === endpoint.EndpointConfigName }, c.EndpointConfigName)));
    manage.replaceChildren(
      h("div", { class: "inline-form" },
        h("label", { for: "update-config" }, "Endpoint configuration"), select,
        h("button", { type: "button", id: "update-endpoint", onclick: () =>
          act("Update endpoint?", `Move ${name} to the configuration ${select.value}?`, "Update", () =>
            sagemaker("UpdateEndpoint", { EndpointName: name, EndpointConfigName: select.value })) }, "Update")),
      h("p", {}, h("button", { type: "button", class: "danger", id: "delete-endpoint", onclick: () =>
        act("Delete endpoint?", `Delete ${name}? Its instances stop and it stops answering.`, "Delete", async () => {
          await sagemaker("DeleteEndpoint", { EndpointName: name });
          ctx.navigate("/console/endpoints");
        }) }, "Delete endpoint")),
    );
  }

  async function drawCharts() {
    const names = (endpoint.ProductionVariants || []).map((v) => v.VariantName);
    const queries = chartQueries(name, names);
    const now = Date.now() / 1000;
    const results = await metricData(queries, Math.floor(now - WINDOW), Math.ceil(now + PERIOD));
    const byChart = { Invocations: [], ModelLatency: [], Errors: [] };
    let invocations = 0;
    for (const q of queries) {
      const r = results[q.id] || { timestamps: [], values: [] };
      if (q.chart === "Invocations") invocations += r.values.reduce((a, b) => a + b, 0);
      byChart[q.chart].push({ label: q.label, timestamps: r.timestamps.map(seconds), values: r.values.map((v) => v * q.scale) });
    }
    total.textContent = String(invocations);
    // The x axis spans from a minute before the first point (or the window's start) to now.
    const first = Math.min(...Object.values(byChart).flat().flatMap((s) => s.timestamps));
    const range = [Math.max(now - WINDOW, Number.isFinite(first) ? first - 60 : now - WINDOW), now];
    for (const [chart, series] of Object.entries(byChart)) charts[chart].draw(series, range);
  }

  async function drawRecent() {
    try {
      const answer = await dockyard("ListRecentInvocations", { EndpointName: name });
      recent.replaceChildren(recentInvocations(answer.Invocations || []));
    } catch (error) {
      recent.replaceChildren(h("p", { class: "muted" }, `Recent invocations are not available: ${error.message}`));
    }
  }

  async function drawInstances() {
    const names = (endpoint.ProductionVariants || []).map((v) => v.VariantName);
    try {
      const answer = await dockyard("DescribeEndpointInstances", { EndpointName: name });
      fill(instances, instanceTables(names, answer.Instances || []));
    } catch (error) {
      instances.replaceChildren(h("p", { class: "muted" }, `Instances are not available: ${error.message}`));
    }
  }

  async function refresh() {
    if (!ctx.alive()) return;
    try {
      endpoint = await sagemaker("DescribeEndpoint", { EndpointName: name });
    } catch (error) {
      problem.replaceChildren(errorNote(error));
      return;
    }
    drawSummary();
    drawVariants();
    await Promise.all([drawInstances(), drawCharts(), drawRecent()]).catch((error) => problem.replaceChildren(errorNote(error)));
  }

  main.append(
    h("p", { class: "crumbs" }, h("a", { href: "/console/endpoints" }, "Endpoints"), " / "),
    h("h1", {}, name),
    problem,
    summary,
    section("Variants", variants, instances),
    section("Traffic", h("div", { class: "charts" }, Object.values(charts).map((c) => c.element))),
    section("Recent invocations", recent),
    section("Manage", manage),
  );
  drawSummary();
  drawVariants();
  await drawManage().catch((error) => manage.replaceChildren(errorNote(error)));
  await refresh();
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try { await refresh(); } finally { busy = false; }
  }, REFRESH_MS);
  return () => {
    clearInterval(timer);
    for (const chart of Object.values(charts)) chart.destroy();
  };
}
