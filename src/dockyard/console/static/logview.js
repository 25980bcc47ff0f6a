// A live log pane: every stream of a log group prefix (one per host), read on from each stream's
// forward token, each line tagged with its host; it follows the end while scrolled there.

import { logs } from "./api.js";
import { h } from "./dom.js";

const MAX_LINES = 20000; // the oldest lines go beyond this, so a chatty job cannot stall the page

/** The host of a stream named "<job>/algo-1-1712345678" (SageMaker's naming): "algo-1". */
export function hostOf(streamName, prefix) {
  const rest = streamName.startsWith(prefix) ? streamName.slice(prefix.length) : streamName;
  const match = /^(algo-\d+)/.exec(rest);
  return match ? match[1] : rest;
}

export class LogView {
  constructor(group, prefix) {
    this.group = group;
    this.prefix = prefix;
    this.tokens = new Map(); // stream name → the forward token to read on from
    this.lines = h("div", { class: "log-lines", role: "log", "aria-live": "off", tabindex: "0", id: "log" });
    this.follow = h("input", { type: "checkbox", id: "log-follow", checked: true });
    this.status = h("span", { class: "muted" });
    this.element = h(
      "div",
      { class: "log-pane" },
      h("div", { class: "log-controls" }, h("label", { for: "log-follow" }, this.follow, " Follow the end"), this.status),
      this.lines,
    );
  }

  /** Reads whatever the streams gained since the last call; answers how many lines came. */
  async poll() {
    const streams = [];
    let nextToken;
    do {
      const page = await logs("DescribeLogStreams", {
        logGroupName: this.group,
        logStreamNamePrefix: this.prefix,
        orderBy: "LogStreamName",
        ...(nextToken ? { nextToken } : {}),
      });
      streams.push(...(page.logStreams || []));
      nextToken = page.nextToken;
    } while (nextToken);
    const events = [];
    for (const stream of streams) {
      const name = stream.logStreamName;
      const host = hostOf(name, this.prefix);
      // Reads on until the token comes back unchanged: the end of what is written so far.
      for (;;) {
        const token = this.tokens.get(name);
        const page = await logs("GetLogEvents", {
          logGroupName: this.group,
          logStreamName: name,
          startFromHead: true,
          ...(token ? { nextToken: token } : {}),
        });
        for (const event of page.events || []) events.push({ host, ...event });
        this.tokens.set(name, page.nextForwardToken);
        if (!page.events?.length || page.nextForwardToken === token) break;
      }
    }
    events.sort((a, b) => a.timestamp - b.timestamp);
    this.append(events);
    this.status.textContent = streams.length
      ? ` ${streams.length} stream${streams.length > 1 ? "s" : ""}`
      : " no log streams yet";
    return events.length;
  }

  append(events) {
    if (!events.length) return;
    const box = this.lines;
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    box.append(...events.map((e) =>
      h("div", { class: "log-line", "data-host": e.host },
        h("span", { class: "log-host" }, `[${e.host}]`), " ", h("span", { class: "log-message" }, e.message))));
    while (box.childElementCount > MAX_LINES) box.firstElementChild.remove();
    if (this.follow.checked && (atEnd || box.childElementCount === events.length)) box.scrollTop = box.scrollHeight;
  }
}
