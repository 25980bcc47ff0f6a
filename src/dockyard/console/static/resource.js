// List and detail pages of the simpler resource kinds (transform jobs, models, endpoint
// configurations): a sortable list, and a detail page of the Describe answer.

import { listAll, sagemaker } from "./api.js";
import { add, facts, formatTime, h, jsonBlock, link, section, seconds, statusBadge, table } from "./dom.js";
import { sortableList } from "./listing.js";

const isTime = (key) => /Time$/.test(key);

/** A list page: `list` is the List operation, `items` its answer's list, `nameKey` each name. */
export function listPage({ title, list, items, nameKey, statusKey, statuses, path, empty }) {
  return async function render(main) {
    document.title = `${title} · dockyard`;
    main.append(h("h1", {}, title));
    const rows = await listAll("SageMaker", list, { MaxResults: 100 }, items);
    if (!rows.length) {
      main.append(h("p", {}, empty));
      return;
    }
    const columns = [
      { label: "Name", value: (r) => r[nameKey], cell: (r) => link(`/console/${path}/${encodeURIComponent(r[nameKey])}`, r[nameKey]) },
    ];
    if (statusKey) columns.push({ label: "Status", value: (r) => r[statusKey], cell: (r) => statusBadge(r[statusKey]) });
    columns.push({ label: "Created", value: (r) => seconds(r.CreationTime), cell: (r) => formatTime(r.CreationTime) });
    main.append(sortableList({
      label: title.toLowerCase(),
      rows,
      columns,
      name: (r) => r[nameKey],
      status: (r) => (statusKey ? r[statusKey] : ""),
      statuses: statusKey ? statuses : null,
      initialSort: columns.length - 1,
    }));
  };
}

/**
 * A detail page: the Describe answer's plain fields as facts, each structured one in a section;
 * a list named in `tables` ({key: columns}) as a table of those columns, anything else as JSON.
 */
export function detailPage({ kind, describe, nameKey, statusKey, path, links = {}, tables = {} }) {
  return async function render(main, [name]) {
    document.title = `${name} · ${kind} · dockyard`;
    const answer = await sagemaker(describe, { [nameKey]: name });
    const plain = [];
    const structured = [];
    for (const [key, value] of Object.entries(answer)) {
      if (key === nameKey || key === statusKey || key === "FailureReason") continue;
      if (value !== null && typeof value === "object") structured.push([key, value]);
      else if (links[key]) plain.push([key, link(`/console/${links[key]}/${encodeURIComponent(value)}`, value)]);
      else plain.push([key, isTime(key) ? formatTime(value) : String(value)]);
    }
    add(
      main,
      h("p", { class: "crumbs" }, h("a", { href: `/console/${path}` }, kind), " / "),
      h("h1", {}, name),
      statusKey ? h("p", { class: "status-line" }, statusBadge(answer[statusKey])) : null,
      answer.FailureReason ? h("div", { class: "failure", role: "alert", id: "failure-reason" }, h("strong", {}, "Failure reason: "), answer.FailureReason) : null,
      facts(plain),
      structured.map(([key, value]) =>
        section(key, tables[key] && Array.isArray(value) ? table(tables[key], value) : jsonBlock(value)),
      ),
    );
  };
}
