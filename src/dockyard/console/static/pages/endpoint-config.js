// One endpoint configuration: its production variants (model, instance type and count, weight).

import { detailPage } from "../resource.js";

export const render = detailPage({
  kind: "Endpoint configurations",
  describe: "DescribeEndpointConfig",
  nameKey: "EndpointConfigName",
  path: "endpoint-configs",
});
