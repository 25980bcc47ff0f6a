// One image repository: its images with tags, digest, size and push time.

import { ecr } from "../api.js";
import { formatTime, h, table } from "../dom.js";
import { unavailable } from "./images.js";

function size(bytes) {
  if (bytes === undefined) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export async function render(main, [name]) {
  document.title = `${name} · Images · dockyard`;
  main.append(
    h("p", { class: "crumbs" }, h("a", { href: "/console/images" }, "Images"), " / "),
    h("h1", {}, name),
  );
  const images = [];
  try {
    let nextToken;
    do {
      const page = await ecr("DescribeImages", { repositoryName: name, maxResults: 100, ...(nextToken ? { nextToken } : {}) });
      images.push(...(page.imageDetails || []));
      nextToken = page.nextToken;
    } while (nextToken);
  } catch (error) {
    if (error.code !== "ServerException") throw error;
    main.append(unavailable(error));
    return;
  }
  images.sort((a, b) => (b.imagePushedAt ?? 0) - (a.imagePushedAt ?? 0));
  main.append(
    images.length ? table([
      { label: "Tags", cell: (i) => (i.imageTags || []).join(", ") || "(untagged)" },
      { label: "Digest", cell: (i) => h("code", {}, i.imageDigest) },
      { label: "Size", cell: (i) => size(i.imageSizeInBytes) },
      { label: "Pushed", cell: (i) => formatTime(i.imagePushedAt) },
    ], images) : h("p", { class: "muted" }, "No images in this repository yet."),
  );
}
