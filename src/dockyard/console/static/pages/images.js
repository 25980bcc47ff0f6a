// The image repositories (the ECR API), or a note saying why there are none to show.

import { ecr } from "../api.js";
import { formatTime, h, link, seconds } from "../dom.js";
import { sortableList } from "../listing.js";

/**
 * Why there are no images to show: the ECR API's own words (ServerException is how it says the
 * image registry is not there), and what images are for.
 */
export function unavailable(error) {
  return h("div", { class: "note", role: "status", id: "images-unavailable" },
    h("p", {}, h("strong", {}, "Images are not available here.")),
    h("p", {}, error.message),
    h("p", { class: "muted" }, "Images live in dockyard's image registry, which the docker runtime's containers run from; jobs on the process runtime run image folders instead."));
}

export async function render(main) {
  document.title = "Images · dockyard";
  main.append(h("h1", {}, "Images"));
  const repositories = [];
  try {
    let nextToken;
    do {
      const page = await ecr("DescribeRepositories", { maxResults: 100, ...(nextToken ? { nextToken } : {}) });
      repositories.push(...(page.repositories || []));
      nextToken = page.nextToken;
    } while (nextToken);
  } catch (error) {
    if (error.code !== "ServerException") throw error;
    main.append(unavailable(error));
    return;
  }
  if (!repositories.length) {
    main.append(h("p", {}, "No repositories yet. Create one with the ECR API (CreateRepository) and push an image."));
    return;
  }
  main.append(sortableList({
    label: "repositories",
    rows: repositories,
    name: (r) => r.repositoryName,
    initialSort: 2,
    columns: [
      { label: "Repository", value: (r) => r.repositoryName, cell: (r) => link(`/console/images/${encodeURIComponent(r.repositoryName)}`, r.repositoryName) },
      { label: "URI", value: (r) => r.repositoryUri, cell: (r) => h("code", {}, r.repositoryUri) },
      { label: "Created", value: (r) => seconds(r.createdAt), cell: (r) => formatTime(r.createdAt) },
    ],
  }));
}
