// The endpoint configurations list.

import { listPage } from "../resource.js";

export const render = listPage({
  title: "Endpoint configurations",
  list: "ListEndpointConfigs",
  items: "EndpointConfigs",
  nameKey: "EndpointConfigName",
  path: "endpoint-configs",
  empty: "No endpoint configurations yet. Create one with CreateEndpointConfig.",
});
