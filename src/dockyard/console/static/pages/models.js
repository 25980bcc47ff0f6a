// The models list.

import { listPage } from "../resource.js";

export const render = listPage({
  title: "Models",
  list: "ListModels",
  items: "Models",
  nameKey: "ModelName",
  path: "models",
  empty: "No models yet. Create one with CreateModel.",
});
