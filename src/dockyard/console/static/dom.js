// Small DOM and formatting helpers shared by the pages (no framework: elements built in code).

/** Makes an element: h("a", {href: "/x", class: "c"}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const present = (children) => children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false);

/** Appends the children that are there (append itself would write "null" for a missing one). */
export function add(el, ...children) {
  el.append(...present(children));
}

/** Replaces an element's children with those that are there. */
export function fill(el, ...children) {
  el.replaceChildren(...present(children));
}

/** A time as seconds since the epoch, from the JSON answers' numbers (or an ISO string). */
export function seconds(time) {
  if (time === undefined || time === null) return null;
  return typeof time === "number" ? time : Date.parse(time) / 1000;
}

export function formatTime(time) {
  const s = seconds(time);
  if (s === null || Number.isNaN(s)) return "—";
  const d = new Date(s * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function formatDuration(totalSeconds) {
  if (totalSeconds === null || totalSeconds === undefined || Number.isNaN(totalSeconds)) return "—";
  const s = Math.max(0, Math.round(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (hours) return `${hours}h ${minutes}m ${rest}s`;
  if (minutes) return `${minutes}m ${rest}s`;
  return `${rest}s`;
}

/** A status as a badge whose class says its kind (for colour). */
export function statusBadge(status) {
  const kind = {
    InProgress: "running", Creating: "running", Updating: "running", Stopping: "running",
    Deleting: "running", SystemUpdating: "running", RollingBack: "running",
    Completed: "ok", InService: "ok",
    Failed: "bad", OutOfService: "bad",
    Stopped: "stopped",
  }[status] || "other";
  return h("span", { class: `badge ${kind}`, "data-status": status }, status || "—");
}

/** A definition list of label → value (values may be elements); empty values are left out. */
export function facts(pairs) {
  const dl = h("dl", { class: "facts" });
  for (const [label, value] of pairs) {
    if (value === undefined || value === null || value === "") continue;
    dl.append(h("dt", {}, label), h("dd", {}, value));
  }
  return dl;
}

/** Any JSON value, readable: a <pre> of it indented. */
export function jsonBlock(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/** A section with a heading. */
export function section(title, ...children) {
  return h("section", { class: "panel" }, h("h2", {}, title), ...children);
}

/** A table of `rows` with `columns` ([{label, cell: row => node|string}]). */
export function table(columns, rows, caption) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", {}, c.cell(row)))))),
    ),
  );
}

/** An error shown where the content would be. */
export function errorNote(error) {
  return h("p", { class: "error", role: "alert" }, `${error.code ? error.code + ": " : ""}${error.message}`);
}

/**
 * Asks the user to confirm `text` in the page's <dialog>; answers true when confirmed.
 * A real dialog rather than window.confirm so it is styled, labelled and keyboard-usable.
 */
export function confirmAction(title, text, confirmLabel = "Confirm") {
  const dialog = document.getElementById("confirm");
  dialog.querySelector("#confirm-title").textContent = title;
  dialog.querySelector("#confirm-text").textContent = text;
  dialog.querySelector("#confirm-yes").textContent = confirmLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

/** The part of the console path after /console/, split: "/console/endpoints/x" → ["endpoints", "x"]. */
export function routeParts(pathname) {
  return pathname.replace(/^\/console\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
}

export function link(path, text) {
  return h("a", { href: path }, text);
}
