// The endpoints list: status, created and last modified; sortable and filterable.

import { listAll } from "../api.js";
import { formatTime, h, link, seconds, statusBadge } from "../dom.js";
import { sortableList } from "../listing.js";

const STATUSES = ["Creating", "InService", "Updating", "SystemUpdating", "RollingBack", "OutOfService", "Deleting", "Failed"];

export async function render(main) {
  document.title = "Endpoints · dockyard";
  main.append(h("h1", {}, "Endpoints"));
  const endpoints = await listAll("SageMaker", "ListEndpoints", { MaxResults: 100 }, "Endpoints");
  if (!endpoints.length) {
    main.append(h("p", {}, "No endpoints yet. Create one with CreateEndpoint from an endpoint configuration."));
    return;
  }
  main.append(sortableList({
    label: "endpoints",
    rows: endpoints,
    name: (e) => e.EndpointName,
    status: (e) => e.EndpointStatus,
    statuses: STATUSES,
    initialSort: 2,
    columns: [
      { label: "Name", value: (e) => e.EndpointName, cell: (e) => link(`/console/endpoints/${encodeURIComponent(e.EndpointName)}`, e.EndpointName) },
      { label: "Status", value: (e) => e.EndpointStatus, cell: (e) => statusBadge(e.EndpointStatus) },
      { label: "Created", value: (e) => seconds(e.CreationTime), cell: (e) => formatTime(e.CreationTime) },
      { label: "Last modified", value: (e) => seconds(e.LastModifiedTime), cell: (e) => formatTime(e.LastModifiedTime) },
    ],
  }));
}
