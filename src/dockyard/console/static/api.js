// The console's one client of the server: every page calls AWS-shaped operations through here.

/** An error answered by the server, with the AWS error code (e.g. ValidationException). */
export class ApiError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.code = code;
    this.status = status;
  }
}

/** The session's CSRF token, which the server puts in the page's <meta name="csrf-token">. */
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

/** Where the sign-in form sends one back: the page being looked at. */
export function signInUrl() {
  const next = location.pathname + location.search;
  return `/console/sign-in?next=${encodeURIComponent(next)}`;
}

/**
 * Calls `<target>.<operation>` with a JSON body and answers the operation's JSON answer.
 * A lapsed session sends the browser to the sign-in form.
 */
export async function call(target, operation, body = {}) {
  const response = await fetch(`/console/api/${target}.${operation}`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: JSON.stringify(body),
  });
  if (response.status === 401) {
    location.assign(signInUrl());
    throw new ApiError("NotSignedIn", "The session has ended; sign in again.", 401);
  }
  const text = await response.text();
  let answer = {};
  try {
    answer = text ? JSON.parse(text) : {};
  } catch {
    throw new ApiError("BadAnswer", `The server answered ${response.status}: ${text.slice(0, 200)}`, response.status);
  }
  if (!response.ok) {
    // AWS JSON errors say their code in __type ("ns#Code" or "Code") and a message.
    const code = String(answer.__type || answer.code || "Error").split("#").pop();
    throw new ApiError(code, answer.message || answer.Message || code, response.status);
  }
  return answer;
}

/** Every page of a paginated list operation, joined: `items` names the list in each answer. */
export async function listAll(target, operation, body, items, limit = 1000) {
  const all = [];
  let token;
  do {
    const page = await call(target, operation, token ? { ...body, NextToken: token } : body);
    all.push(...(page[items] || []));
    token = page.NextToken;
  } while (token && all.length < limit);
  return all;
}

export const sagemaker = (operation, body) => call("SageMaker", operation, body);
export const logs = (operation, body) => call("Logs_20140328", operation, body);
export const ecr = (operation, body) => call("AmazonEC2ContainerRegistry_V20150921", operation, body);
export const cloudwatch = (operation, body) => call("GraniteServiceVersion20100801", operation, body);
export const dockyard = (operation, body) => call("Dockyard", operation, body);

/**
 * GetMetricData for `queries` ([{id, metric: {Namespace, MetricName, Dimensions}, stat, period}])
 * between two times (seconds): answers {id: {timestamps, values}} in ascending time.
 */
export async function metricData(queries, start, end) {
  const out = {};
  if (!queries.length) return out;
  const MetricDataQueries = queries.map((q) => ({
    Id: q.id,
    MetricStat: { Metric: q.metric, Period: q.period, Stat: q.stat },
    ReturnData: true,
  }));
  let token;
  do {
    const body = { MetricDataQueries, StartTime: start, EndTime: end, ScanBy: "TimestampAscending" };
    if (token) body.NextToken = token;
    const page = await cloudwatch("GetMetricData", body);
    for (const result of page.MetricDataResults || []) {
      const series = (out[result.Id] ||= { timestamps: [], values: [] });
      series.timestamps.push(...(result.Timestamps || []));
      series.values.push(...(result.Values || []));
    }
    token = page.NextToken;
  } while (token);
  return out;
}
