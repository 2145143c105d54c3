// The public HTTP API as the console uses it: one request helper, the API key, the error body.
// Paths are relative to the page (/ui/), so the console works behind a path-prefixing proxy too.

const KEY_ITEM = "phishlens.apiKey";
const API_ROOT = new URL("..", document.baseURI);

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

export const apiKey = {
  // sessionStorage: the key lives as long as this tab, is never written to disk by us, never in a URL
  get: () => sessionStorage.getItem(KEY_ITEM) || "",
  set: (key) => (key ? sessionStorage.setItem(KEY_ITEM, key) : sessionStorage.removeItem(KEY_ITEM)),
};

export async function call(method, path, body, { signal, text = false } = {}) {
  const headers = { Accept: text ? "text/plain" : "application/json" };
  const key = apiKey.get();
  if (key) headers["X-API-Key"] = key;
  const init = { method, headers, signal, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(new URL(path, API_ROOT), init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "network", `the server did not answer (${e.message})`);
  }
  if (res.ok) return text ? res.text() : res.json();
  let type = "http_error";
  let message = `${res.status} ${res.statusText}`;
  try {
    const err = (await res.json()).error;
    if (err) ({ type, message } = err);
  } catch {
    // not our JSON error body (a proxy's page): keep the status line
  }
  throw new ApiError(res.status, type, message);
}

// The few gauges and counters the console shows, read from the Prometheus text format.
export function parseMetrics(text, names) {
  const out = {};
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m || !names.includes(m[1])) continue;
    const labels = {};
    for (const [, k, v] of m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v.replace(/\\(.)/g, "$1");
    (out[m[1]] ||= []).push({ labels, value: Number(m[3]) });
  }
  return out;
}
