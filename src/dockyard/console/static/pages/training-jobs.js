// The training jobs list: status, duration, instance type, created; sortable and filterable.

import { listAll, sagemaker } from "../api.js";
import { formatDuration, formatTime, h, link, seconds, statusBadge } from "../dom.js";
import { sortableList } from "../listing.js";

const STATUSES = ["InProgress", "Completed", "Failed", "Stopping", "Stopped"];
const DESCRIBED = 200; // the newest jobs described for their instance type and start time

/** Runs `work` on every item, a few at a time (one server, shared with the jobs themselves). */
async function each(items, work, width = 6) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

function duration(job) {
  const start = seconds(job.TrainingStartTime ?? job.CreationTime);
  const end = seconds(job.TrainingEndTime) ?? (job.TrainingJobStatus === "InProgress" ? Date.now() / 1000 : null);
  return start !== null && end !== null ? end - start : null;
}

export async function render(main) {
  document.title = "Training jobs · dockyard";
  main.append(h("h1", {}, "Training jobs"));
  const summaries = await listAll("SageMaker", "ListTrainingJobs", { MaxResults: 100, SortBy: "CreationTime", SortOrder: "Descending" }, "TrainingJobSummaries");
  const jobs = summaries.map((s) => ({ ...s }));
  await each(jobs.slice(0, DESCRIBED), async (job) => {
    try {
      const d = await sagemaker("DescribeTrainingJob", { TrainingJobName: job.TrainingJobName });
      job.InstanceType = d.ResourceConfig?.InstanceType;
      job.InstanceCount = d.ResourceConfig?.InstanceCount;
      job.TrainingStartTime = d.TrainingStartTime;
    } catch {
      // Deleted between list and describe: the row still shows what the list said.
    }
  });
  if (!jobs.length) {
    main.append(h("p", {}, "No training jobs yet. Create one with the SageMaker API (CreateTrainingJob)."));
    return;
  }
  main.append(sortableList({
    label: "training jobs",
    rows: jobs,
    name: (j) => j.TrainingJobName,
    status: (j) => j.TrainingJobStatus,
    statuses: STATUSES,
    initialSort: 4,
    columns: [
      { label: "Name", value: (j) => j.TrainingJobName, cell: (j) => link(`/console/training-jobs/${encodeURIComponent(j.TrainingJobName)}`, j.TrainingJobName) },
      { label: "Status", value: (j) => j.TrainingJobStatus, cell: (j) => [statusBadge(j.TrainingJobStatus), j.SecondaryStatus && j.SecondaryStatus !== j.TrainingJobStatus ? h("span", { class: "muted" }, ` ${j.SecondaryStatus}`) : null] },
      { label: "Duration", value: duration, cell: (j) => formatDuration(duration(j)) },
      { label: "Instance type", value: (j) => j.InstanceType, cell: (j) => (j.InstanceType ? `${j.InstanceType}${j.InstanceCount > 1 ? ` × ${j.InstanceCount}` : ""}` : "—") },
      { label: "Created", value: (j) => seconds(j.CreationTime), cell: (j) => formatTime(j.CreationTime) },
    ],
  }));
}
