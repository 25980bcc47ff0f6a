// The transform jobs list.

import { listPage } from "../resource.js";

export const render = listPage({
  title: "Transform jobs",
  list: "ListTransformJobs",
  items: "TransformJobSummaries",
  nameKey: "TransformJobName",
  statusKey: "TransformJobStatus",
  statuses: ["InProgress", "Completed", "Failed", "Stopping", "Stopped"],
  path: "transform-jobs",
  empty: "No transform jobs yet. Start one with CreateTransformJob.",
});
