// One transform job: its status, FailureReason, input, output and resources.

import { detailPage } from "../resource.js";

export const render = detailPage({
  kind: "Transform jobs",
  describe: "DescribeTransformJob",
  nameKey: "TransformJobName",
  statusKey: "TransformJobStatus",
  path: "transform-jobs",
  links: { ModelName: "models" },
});
