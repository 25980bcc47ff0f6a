// One training job: status and its timeline, FailureReason, live log of every host, one chart
// per metric with every host, hyperparameters, channels, resources, artifacts, and Stop.

import { sagemaker } from "../api.js";
import { confirmAction, errorNote, facts, fill, formatDuration, formatTime, h, jsonBlock, section, seconds, statusBadge, table } from "../dom.js";
import { LogView } from "../logview.js";
import { MetricView } from "../metricview.js";

const ENDED = ["Completed", "Failed", "Stopped"];
const LOG_GROUP = "/aws/sagemaker/TrainingJobs";

// DescribeTrainingJob names the model's place from the start (SageMaker's ModelArtifacts is
// required), but there is a file to download only once a job has ended with one: Completed, or
// Stopped (its hosts' model is uploaded too). A failed job's place is shown, not linked.
function modelArtifacts(job) {
  const uri = job.ModelArtifacts?.S3ModelArtifacts;
  const status = job.TrainingJobStatus;
  if (!uri) return h("p", { class: "muted" }, "No model artifacts.");
  if (status === "Completed" || status === "Stopped") return h("p", {}, "Model: ", artifactLink(uri));
  if (status === "Failed") return h("p", { class: "muted" }, `No model: the job failed (it would have been ${uri}).`);
  return h("p", { class: "muted" }, `The model is uploaded to ${uri} when the job ends.`);
}

export function artifactLink(uri) {
  return h("a", { href: `/console/artifacts?uri=${encodeURIComponent(uri)}`, download: true }, uri);
}

function timeline(job) {
  const transitions = job.SecondaryStatusTransitions || [];
  if (!transitions.length) return h("p", { class: "muted" }, "No status transitions yet.");
  return h("ol", { class: "timeline", id: "timeline" }, transitions.map((t) => {
    const end = seconds(t.EndTime);
    const length = end !== null ? formatDuration(end - seconds(t.StartTime)) : "now";
    return h("li", { "data-status": t.Status, class: end === null ? "current" : "" },
      h("strong", {}, t.Status), " ", h("span", { class: "muted" }, `${formatTime(t.StartTime)} · ${length}`),
      t.StatusMessage ? h("div", { class: "muted" }, t.StatusMessage) : null);
  }));
}

function channels(job) {
  const list = job.InputDataConfig || [];
  if (!list.length) return h("p", { class: "muted" }, "No input channels.");
  return table([
    { label: "Channel", cell: (c) => c.ChannelName },
    { label: "Source", cell: (c) => c.DataSource?.S3DataSource?.S3Uri || c.DataSource?.FileSystemDataSource?.DirectoryPath || JSON.stringify(c.DataSource) },
    { label: "Distribution", cell: (c) => c.DataSource?.S3DataSource?.S3DataDistributionType || "—" },
    { label: "Content type", cell: (c) => c.ContentType || "—" },
    { label: "Input mode", cell: (c) => c.InputMode || job.AlgorithmSpecification?.TrainingInputMode || "—" },
  ], list);
}

function hyperparameters(job) {
  const entries = Object.entries(job.HyperParameters || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return h("p", { class: "muted" }, "No hyperparameters.");
  return table([{ label: "Name", cell: ([k]) => k }, { label: "Value", cell: ([, v]) => h("code", {}, v) }], entries);
}

export async function render(main, [name], ctx) {
  document.title = `${name} · Training jobs · dockyard`;
  let job = await sagemaker("DescribeTrainingJob", { TrainingJobName: name });

  const header = h("div", { class: "summary" });
  const artifacts = h("div");
  const logView = new LogView(LOG_GROUP, `${name}/`);
  const metricView = new MetricView(name, job.AlgorithmSpecification?.MetricDefinitions || []);
  const problem = h("div");

  async function stop() {
    if (!(await confirmAction("Stop training job?", `Stop ${name}? Its hosts are sent SIGTERM, then killed after a grace period.`, "Stop job"))) return;
    try {
      await sagemaker("StopTrainingJob", { TrainingJobName: name });
      job = await sagemaker("DescribeTrainingJob", { TrainingJobName: name });
      drawHeader();
    } catch (error) {
      problem.replaceChildren(errorNote(error));
    }
  }

  function drawHeader() {
    const start = seconds(job.TrainingStartTime ?? job.CreationTime);
    const end = seconds(job.TrainingEndTime) ?? Date.now() / 1000;
    fill(header,
      h("p", { class: "status-line" }, statusBadge(job.TrainingJobStatus), " ",
        h("span", { id: "secondary-status" }, job.SecondaryStatus || ""),
        job.TrainingJobStatus === "InProgress"
          ? h("button", { type: "button", class: "danger", id: "stop-job", onclick: stop }, "Stop")
          : null),
      job.TrainingJobStatus === "Failed"
        ? h("div", { class: "failure", role: "alert", id: "failure-reason" }, h("strong", {}, "Failure reason: "), job.FailureReason || "none given")
        : null,
      facts([
        ["Created", formatTime(job.CreationTime)],
        ["Started", job.TrainingStartTime ? formatTime(job.TrainingStartTime) : null],
        ["Ended", job.TrainingEndTime ? formatTime(job.TrainingEndTime) : null],
        ["Duration", formatDuration(end - start)],
        ["Image", job.AlgorithmSpecification?.TrainingImage],
        ["Final metrics", (job.FinalMetricDataList || []).map((m) => `${m.MetricName} = ${m.Value}`).join(", ")],
      ]),
      h("h2", {}, "Status timeline"),
      timeline(job),
    );
    artifacts.replaceChildren(modelArtifacts(job));
  }

  drawHeader();
  const rc = job.ResourceConfig || {};
  main.append(
    h("p", { class: "crumbs" }, h("a", { href: "/console/training-jobs" }, "Training jobs"), " / "),
    h("h1", {}, name),
    problem,
    header,
    section("Metrics", metricView.element),
    section("Log", logView.element),
    section("Hyperparameters", hyperparameters(job)),
    section("Channels", channels(job)),
    section("Resources", facts([
      ["Instance type", rc.InstanceType],
      ["Instance count", rc.InstanceCount],
      ["Volume (GB)", rc.VolumeSizeInGB],
      ["Max runtime", job.StoppingCondition?.MaxRuntimeInSeconds ? formatDuration(job.StoppingCondition.MaxRuntimeInSeconds) : null],
      ["Output path", job.OutputDataConfig?.S3OutputPath],
      ["Role", job.RoleArn],
    ]), rc.InstanceGroups ? jsonBlock(rc.InstanceGroups) : null),
    section("Artifacts", artifacts),
  );

  // Logs every second, the job and its metrics every other; once it has ended, one last read of each.
  let tick = 0;
  let timer = null;
  let busy = false;
  const metricWindow = () => [seconds(job.CreationTime) - 60, (seconds(job.TrainingEndTime) ?? Date.now() / 1000) + 60];

  async function poll() {
    if (busy || !ctx.alive()) return;
    busy = true;
    try {
      const ended = ENDED.includes(job.TrainingJobStatus);
      await logView.poll();
      if (tick % 2 === 0 || ended) {
        job = await sagemaker("DescribeTrainingJob", { TrainingJobName: name });
        drawHeader();
        await metricView.refresh(...metricWindow());
      }
      if (ended && ENDED.includes(job.TrainingJobStatus)) {
        clearInterval(timer);
        await logView.poll(); // what the hosts wrote as they ended
      }
      problem.replaceChildren();
    } catch (error) {
      problem.replaceChildren(errorNote(error));
    } finally {
      tick += 1;
      busy = false;
    }
  }

  await poll();
  if (!ENDED.includes(job.TrainingJobStatus)) timer = setInterval(poll, 1000);
  return () => {
    clearInterval(timer);
    metricView.destroy();
  };
}
