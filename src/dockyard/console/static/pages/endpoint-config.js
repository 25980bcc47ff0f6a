// One endpoint configuration: its production variants (model, instance type and count, weight).

import { link } from "../dom.js";
import { detailPage } from "../resource.js";

// What a variant is made of; a field a variant does not have shows as a dash.
const shown = (value) => (value === undefined || value === null ? "—" : String(value));
const VARIANT_COLUMNS = [
  { label: "Variant", cell: (v) => v.VariantName },
  { label: "Model", cell: (v) => (v.ModelName ? link(`/console/models/${encodeURIComponent(v.ModelName)}`, v.ModelName) : "—") },
  { label: "Instance type", cell: (v) => shown(v.InstanceType) },
  { label: "Instances", cell: (v) => shown(v.InitialInstanceCount) },
  { label: "Weight", cell: (v) => shown(v.InitialVariantWeight) },
];

export const render = detailPage({
  kind: "Endpoint configurations",
  describe: "DescribeEndpointConfig",
  nameKey: "EndpointConfigName",
  path: "endpoint-configs",
  tables: { ProductionVariants: VARIANT_COLUMNS },
});
