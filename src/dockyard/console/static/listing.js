// A resource list: a table sortable by any column and filtered by name and status.

import { h } from "./dom.js";

/**
 * Renders `rows` into a table whose headers sort it; `columns` are
 * [{label, value: row => sortable value, cell: row => node|string}]; `name` and `status` say
 * which values the filters match (status filter shown only when `statuses` is given).
 */
export function sortableList({ columns, rows, name, status, statuses, label, initialSort = 0, descending = true }) {
  let sortColumn = initialSort;
  let sortDescending = descending;
  const nameInput = h("input", { type: "search", id: "filter-name", placeholder: "part of a name" });
  const statusSelect = statuses
    ? h("select", { id: "filter-status" }, h("option", { value: "" }, "any"),
        statuses.map((s) => h("option", { value: s }, s)))
    : null;
  const count = h("p", { class: "muted count", "aria-live": "polite" });
  const tbody = h("tbody");
  const headers = columns.map((column, i) => {
    const button = h("button", { type: "button", class: "sort", onclick: () => {
      if (sortColumn === i) sortDescending = !sortDescending;
      else { sortColumn = i; sortDescending = false; }
      draw();
    } }, column.label);
    return h("th", { scope: "col" }, button);
  });

  function draw() {
    const text = nameInput.value.trim().toLowerCase();
    const wanted = statusSelect ? statusSelect.value : "";
    const shown = rows.filter((row) =>
      (!text || name(row).toLowerCase().includes(text)) && (!wanted || status(row) === wanted));
    const key = columns[sortColumn].value;
    shown.sort((a, b) => {
      const x = key(a);
      const y = key(b);
      const order = x === y ? 0 : x === null || x === undefined ? 1 : y === null || y === undefined ? -1 : x < y ? -1 : 1;
      return sortDescending ? -order : order;
    });
    headers.forEach((th, i) => {
      if (i === sortColumn) th.setAttribute("aria-sort", sortDescending ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
    tbody.replaceChildren(...shown.map((row) => h("tr", {}, columns.map((c) => h("td", {}, c.cell(row))))));
    count.textContent = `${shown.length} of ${rows.length} ${label}`;
  }

  nameInput.addEventListener("input", draw);
  if (statusSelect) statusSelect.addEventListener("change", draw);
  draw();
  return h(
    "div",
    { class: "listing" },
    h("div", { class: "filters" },
      h("label", { for: "filter-name" }, "Name"), nameInput,
      statusSelect ? [h("label", { for: "filter-status" }, "Status"), statusSelect] : null),
    count,
    h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, headers)), tbody)),
  );
}
