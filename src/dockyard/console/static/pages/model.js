// One model: its containers (image, model data), role and network settings.

import { detailPage } from "../resource.js";

export const render = detailPage({
  kind: "Models",
  describe: "DescribeModel",
  nameKey: "ModelName",
  path: "models",
});
