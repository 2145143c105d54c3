// The analyst console: check a message, see why, give feedback, watch each adapter's health.
// Everything goes through the public API (api.js); the message text only ever travels in request bodies.

import { ApiError, apiKey, call, parseMetrics } from "./api.js";
import { el, pct, renderLayerChart, renderTokens, short, signed, topWords } from "./view.js";

const $ = (id) => document.getElementById(id);
const state = {
  adapters: [],         // GET /v1/adapters data
  returnText: false,    // the server's ClassifyRequest has `return_text` (raw e-mail support, issue 12)
  features: null,       // Promise of detectFeatures()
  last: null,           // {id, item, kind, results} of the verdicts shown
  explainAbort: null,   // AbortController of the running explanation
  probe: null,          // {layers, series} of the chart shown (redrawn when the window is resized)
  file: null,           // {text, base64} of the last .eml opened
};

// ---- notices and errors -------------------------------------------------------------------------------
function notice(message) {
  const n = $("notice");
  n.textContent = message || "";
  n.hidden = !message;
}

function explainError(e, what) {
  if (e instanceof ApiError && e.status === 401) {
    $("api-key").focus();
    return `${what}: this server needs an API key (${e.message}). Enter it at the top; it is kept in this tab only.`;
  }
  if (e instanceof ApiError && e.status === 429) return `${what}: the server is busy (${e.message}); try again shortly.`;
  if (e instanceof ApiError && e.status) return `${what} failed (${e.status} ${e.type}): ${e.message}`;
  return `${what} failed: ${e.message}`;
}

// ---- server status, API key, adapters ----------------------------------------------------------------
async function loadStatus() {
  try {
    const r = await call("GET", "ready");
    $("server-status").textContent = `ready · ${r.backend} · ${r.adapters.length} adapter(s)`;
    $("server-status").className = "server-status ok";
  } catch (e) {
    $("server-status").textContent = `not ready: ${e.message}`;
    $("server-status").className = "server-status bad";
  }
}

async function detectFeatures() {
  // Optional request fields are feature-detected from the OpenAPI schema: requests forbid unknown fields.
  try {
    const spec = await call("GET", "openapi.json");
    const ref = spec.paths?.["/v1/classify"]?.post?.requestBody?.content?.["application/json"]?.schema?.$ref;
    const schema = ref ? spec.components.schemas[ref.split("/").pop()] : null;
    state.returnText = Boolean(schema?.properties?.return_text);
  } catch {
    state.returnText = false;
  }
}

async function loadAdapters() {
  const box = $("adapters");
  try {
    state.adapters = (await call("GET", "v1/adapters")).data;
  } catch (e) {
    state.adapters = [];
    box.replaceChildren(el("legend", { text: "Adapters" }), el("p", { class: "muted", text: "not loaded" }));
    notice(explainError(e, "Listing adapters"));
    return;
  }
  notice("");
  const checks = state.adapters.map((a) => el("label", { class: "check" },
    el("input", { type: "checkbox", name: "adapter", value: a.name, checked: a.default }),
    ` ${a.name}`, a.default ? el("span", { class: "muted", text: " (default)" }) : null));
  box.replaceChildren(el("legend", { text: "Adapters" }), ...checks);
}

function useKey(event) {
  event.preventDefault();
  const input = $("api-key");
  apiKey.set(input.value.trim());
  input.value = "";
  showKeyState();
  refreshAll();
}

function showKeyState() {
  $("api-key").placeholder = apiKey.get() ? "key set for this tab" : "kept in this tab only";
}

// ---- check a message ---------------------------------------------------------------------------------
function inputItem() {
  const text = $("message").value;
  if ($("input-kind").value !== "email") return text;
  // an unedited file goes byte for byte (base64): 8-bit bodies in any charset survive; edited text as typed
  if (state.file && state.file.text === text) return { email: state.file.base64, encoding: "base64" };
  return { email: text };
}

function base64(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

async function classify(event) {
  event?.preventDefault();
  const text = $("message").value;
  const adapters = [...document.querySelectorAll('#adapters input[name="adapter"]:checked')].map((i) => i.value);
  if (!text.trim()) return setStatus("check-status", "Enter a message (or open an .eml file) first.");
  if (!adapters.length) return setStatus("check-status", "Choose at least one adapter.");
  await state.features;
  const kind = $("input-kind").value;
  const item = inputItem();
  const body = { input: [item], adapters };
  if (state.returnText) body.return_text = true;
  setStatus("check-status", "classifying…");
  $("classify").disabled = true;
  try {
    const r = await call("POST", "v1/classify", body);
    state.last = { id: r.id, item, kind, results: r.data };
    notice("");
    setStatus("check-status", "");
    showVerdicts(r);
    refreshHealth();
  } catch (e) {
    setStatus("check-status", "");
    if (kind === "email" && e instanceof ApiError && e.status === 422) {
      notice(`This server does not accept raw e-mail input yet (422: ${e.message}). Choose "text" as the input ` +
             "to score the file's text as it is, or paste the message's subject and body.");
    } else {
      notice(explainError(e, "Classification"));
    }
  } finally {
    $("classify").disabled = false;
  }
}

function setStatus(id, text) {
  $(id).textContent = text;
}

function verdictRow(r) {
  // the adapter's decision rule (GET /v1/adapters `calibration`), when the server publishes it
  const cal = state.adapters.find((a) => a.name === r.adapter.name)?.calibration;
  const label = el("span", { class: `badge ${r.label}`, text: r.label });
  const uncertain = r.uncertain ? el("span", { class: "badge uncertain", text: "uncertain",
    title: "P(phishing) falls in the adapter's uncertain band: a person should look" }) : null;
  const ood = r.ood?.flagged ? el("span", { class: "badge uncertain ood", text: "unfamiliar text",
    title: `Unlike the texts this adapter was built on (OOD score ${r.ood.score.toFixed(2)} > ` +
           `${r.ood.threshold.toFixed(2)}): give the verdict less weight` }) : null;
  const input = [r.style ? `${r.style}${r.style_source ? ` (${r.style_source})` : ""}` : "text",
                 r.truncated ? "truncated (head and tail kept)" : null].filter(Boolean).join(", ");
  return el("tr", { "data-adapter": r.adapter.name, "data-label": r.label },
    el("th", { scope: "row" }, el("span", { class: "name", text: r.adapter.name }), " ",
       el("code", { class: "sha", title: `sha256 ${r.adapter.sha256}`, "aria-label": `sha256 ${r.adapter.sha256}`,
                    text: short(r.adapter.sha256) })),
    el("td", { "data-col": "verdict" }, label, " ", uncertain, " ", ood),
    el("td", { class: "score", "data-score": r.score, "data-col": "P(phishing)" },
       el("meter", { min: 0, max: 1, low: cal?.uncertain_low ?? 0.35, high: cal?.uncertain_high ?? 0.65, optimum: 0,
                     value: r.score }), ` ${pct(r.score)}`,
       cal ? el("span", { class: "band", "data-threshold": cal.threshold,
                          text: `phishing from ${pct(cal.threshold)}; uncertain ` +
                                `${(100 * cal.uncertain_low).toFixed(1)}–${pct(cal.uncertain_high)}` }) : null),
    el("td", { "data-col": "input", text: input }));
}

function showVerdicts(r) {
  $("verdicts-empty").hidden = true;
  $("verdicts-body").hidden = false;
  $("verdict-table").tBodies[0].replaceChildren(...r.data.map(verdictRow));
  const caption = $("verdict-caption");
  caption.textContent = `request ${r.id.slice(0, 16)}… · ${r.usage.prompt_tokens} prompt tokens`;
  caption.title = r.id;
  caption.dataset.requestId = r.id;
  const seen = r.data.find((d) => typeof d.text === "string");
  $("parsed").hidden = !seen;
  $("parsed-text").textContent = seen ? seen.text : "";
  const mail = r.data.find((d) => d.email)?.email;
  $("email-parse").hidden = !mail;
  if (mail) {
    const att = mail.attachments.map((a) => `${a.filename || "(unnamed)"} (${a.content_type}, ${a.size} bytes)`);
    $("email-parse").textContent = `E-mail: ${mail.parts} MIME part(s), body from ${mail.body_type}` +
      (mail.forwarded ? ", with a forwarded message" : "") +
      (att.length ? `; attachments: ${att.join(", ")}` : "; no attachments") +
      (mail.defects.length ? `; parser defects: ${mail.defects.join(", ")}` : "") + ".";
  }
  setStatus("feedback-status", "");
  for (const id of ["fb-phishing", "fb-legitimate"]) $(id).disabled = false;
  // the Why panel follows the verdicts shown
  const sel = $("why-adapter");
  sel.replaceChildren(...r.data.map((d) => el("option", { value: d.adapter.name, text: d.adapter.name })));
  const preferred = state.adapters.find((a) => a.default && r.data.some((d) => d.adapter.name === a.name));
  if (preferred) sel.value = preferred.name;
  for (const id of ["why-adapter", "explain", "probe"]) $(id).disabled = false;
  $("explanation").hidden = true;
  $("probe-out").hidden = true;
  setStatus("why-status", "");
}

async function sendFeedback(label) {
  if (!state.last) return;
  for (const id of ["fb-phishing", "fb-legitimate"]) $(id).disabled = true;
  try {
    const r = await call("POST", "v1/feedback", { request_id: state.last.id, labels: [{ index: 0, label }] });
    const per = r.data.map((d) => `${d.adapter}: ${d.outcome} (${d.status})`).join(", ");
    setStatus("feedback-status", `Recorded "${label}" for ${r.recorded} verdict(s) — ${per}.` +
      (r.conflicts ? ` ${r.conflicts} verdict(s) already had a different label, which stands.` : ""));
    refreshHealth();
  } catch (e) {
    setStatus("feedback-status", explainError(e, "Feedback"));
  } finally {
    for (const id of ["fb-phishing", "fb-legitimate"]) $(id).disabled = false;
  }
}

// ---- why: explanation and probes ---------------------------------------------------------------------
async function explain(event) {
  event.preventDefault();
  if (!state.last || state.explainAbort) return;
  const adapter = $("why-adapter").value;
  const maxEvals = Math.max(4, parseInt($("max-evals").value, 10) || 300);
  const ctrl = new AbortController();
  state.explainAbort = ctrl;
  const started = performance.now();
  const tick = () => {
    const s = ((performance.now() - started) / 1000).toFixed(0);
    $("explain-elapsed").textContent = `explaining ${adapter}'s verdict: ${s} s (budget ${maxEvals} evaluations)`;
  };
  tick();
  const timer = setInterval(tick, 500);
  $("explain-progress").hidden = false;
  $("explain-cancel").hidden = false;
  $("explain").disabled = true;
  setStatus("why-status", "");
  try {
    const r = await call("POST", "v1/explain", { input: state.last.item, adapter, granularity: $("granularity").value,
                                                 max_evals: maxEvals }, { signal: ctrl.signal });
    showExplanation(r);
  } catch (e) {
    if (e.name === "AbortError") setStatus("why-status", "Explanation cancelled.");
    else setStatus("why-status", explainError(e, "Explanation"));
  } finally {
    clearInterval(timer);
    state.explainAbort = null;
    $("explain-progress").hidden = true;
    $("explain-cancel").hidden = true;
    $("explain").disabled = false;
  }
}

function showExplanation(r) {
  renderTokens($("tokens"), r.tokens, r.attributions);
  const { pos, neg } = topWords(r.tokens, r.attributions);
  const item = ([w, v]) => el("li", {}, el("span", { class: "word", text: w }), ` ${signed(v)}`);
  $("top-for").replaceChildren(...pos.map(item));
  $("top-against").replaceChildren(...neg.map(item));
  $("top-for-none").hidden = pos.length > 0;
  $("top-against-none").hidden = neg.length > 0;
  $("explain-meta").textContent = `${r.adapter.name}: ${r.label}, P(phishing) ${r.prediction.toFixed(3)} from a ` +
    `base of ${r.base_value.toFixed(3)} · ${r.evaluations} of ${r.max_evals} evaluations · ${r.seconds.toFixed(1)} s`;
  $("explanation").hidden = false;
}

async function probe() {
  if (!state.last) return;
  const adapter = $("why-adapter").value;
  $("probe").disabled = true;
  setStatus("why-status", `probing ${adapter}…`);
  try {
    const r = await call("POST", "v1/probe", { input: state.last.item, adapter });
    showProbe(r);
    setStatus("why-status", "");
  } catch (e) {
    setStatus("why-status", explainError(e, "Probe"));
  } finally {
    $("probe").disabled = false;
  }
}

function showProbe(r) {
  const series = [{ name: "logit_lens", label: "logit lens: P(phishing) read at the layer", values: r.logit_lens }];
  const labelProbe = r.probes.label;
  if (Array.isArray(labelProbe) && labelProbe.every((v) => typeof v === "number")) {
    series.push({ name: "probe.label", label: "linear probe: P(phishing)", values: labelProbe });
  }
  $("probe-out").hidden = false;  // visible first: the chart is drawn at its on-screen width
  state.probe = { layers: r.layers, series };
  renderLayerChart($("probe-chart"), r.layers, series);
  $("probe-chart-title").textContent = `${r.adapter.name}: P(phishing) by layer; served score ${r.score.toFixed(3)}`;
  $("probe-legend").replaceChildren(...series.map((s, k) => el("li", {}, el("span", { class: `swatch s${k}` }),
    ` ${s.label}`)));
  // every probe as numbers (binary: P(present); multi-class: the likeliest class)
  const names = Object.keys(r.probes);
  const cell = (v) => (typeof v === "number" ? v.toFixed(3)
    : Object.entries(v).sort((a, b) => b[1] - a[1]).slice(0, 1).map(([c, p]) => `${c} ${p.toFixed(2)}`)[0]);
  $("probe-table").replaceChildren(
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "layer" }), el("th", { scope: "col", text: "logit lens" }),
      ...names.map((n) => el("th", { scope: "col", text: n })))),
    el("tbody", {}, ...r.layers.map((layer, i) => el("tr", {}, el("th", { scope: "row", text: layer }),
      el("td", { text: r.logit_lens[i].toFixed(3) }), ...names.map((n) => el("td", { text: cell(r.probes[n][i]) }))))));
  $("probe-out").hidden = false;
}

// ---- adapter health ----------------------------------------------------------------------------------
const PERF = ["phishlens_expected_precision", "phishlens_expected_recall", "phishlens_live_precision",
              "phishlens_live_recall", "phishlens_feedback_total"];

function perAdapter(metrics, name, adapter) {
  return (metrics[name] || []).filter((s) => s.labels.adapter === adapter);
}

function healthCard(d, metrics) {
  const one = (n) => perAdapter(metrics, n, d.adapter)[0]?.value;
  const fmt = (v) => (v === undefined || Number.isNaN(v) ? "—" : v.toFixed(2));
  const labelled = perAdapter(metrics, "phishlens_feedback_total", d.adapter).reduce((s, x) => s + x.value, 0);
  const byFeature = new Map(d.features.map((f) => [f.feature, f]));
  const shifted = d.most_shifted.map((name) => {
    const f = byFeature.get(name);
    return el("li", { class: f?.over ? "over" : "" }, el("span", { text: name }),
      f ? ` ${f.statistic.toFixed(3)} / ${f.threshold.toFixed(3)}${f.over ? " over" : ""}` : "");
  });
  const words = d.typical_live.slice(0, 6).map((w) => w.word).join(", ");
  // what the adapter scored on held-out test rows at training time (bundle manifest, GET /v1/adapters)
  const tests = Object.entries(state.adapters.find((a) => a.name === d.adapter)?.metrics?.test || {})
    .filter(([, m]) => typeof m?.f1 === "number").map(([style, m]) => `${style} ${m.f1.toFixed(2)}`);
  return el("article", { class: `card ${d.status}`, "data-adapter": d.adapter },
    el("h3", {}, d.adapter, " ", el("span", { class: `badge drift-${d.status}`, text: d.status.replace("_", " ") }),
       d.alert ? el("span", { class: "badge phishing", text: "alert" }) : null),
    el("p", { class: "muted" }, el("code", { title: `sha256 ${d.sha256}`, text: short(d.sha256) }),
       ` · window ${d.window_texts}/${d.window_size} · ${d.texts_seen} texts seen`),
    el("table", { class: "perf" },
      el("thead", {}, el("tr", {}, el("th", { text: "" }), el("th", { scope: "col", text: "precision" }),
        el("th", { scope: "col", text: "recall" }))),
      el("tbody", {},
        el("tr", {}, el("th", { scope: "row", text: "estimated (no labels)" }),
          el("td", { text: fmt(one("phishlens_expected_precision")) }), el("td", { text: fmt(one("phishlens_expected_recall")) })),
        el("tr", { "data-labelled": labelled }, el("th", { scope: "row", text: `live (${labelled} labels)` }),
          el("td", { text: fmt(one("phishlens_live_precision")) }), el("td", { text: fmt(one("phishlens_live_recall")) })))),
    tests.length ? el("p", { class: "trained" }, el("span", { class: "muted", text: "test F1 at training: " }),
      tests.join(" · ")) : null,
    shifted.length ? el("div", {}, el("h4", { text: "Most shifted (statistic / threshold)" }), el("ol", {}, ...shifted)) : null,
    words ? el("p", {}, el("span", { class: "muted", text: "typical of live traffic: " }), words) : null,
    d.detail ? el("p", { class: "muted", text: d.detail }) : null);
}

async function refreshHealth() {
  setStatus("health-status", "loading…");
  let metrics = {};
  try {
    metrics = parseMetrics(await call("GET", "metrics", undefined, { text: true }), PERF);
  } catch {
    // metrics are optional for this panel (a proxy may hide /metrics): drift still shows
  }
  try {
    const r = await call("GET", "v1/drift");
    $("health-cards").replaceChildren(...r.data.map((d) => healthCard(d, metrics)));
    setStatus("health-status", `updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    $("health-cards").replaceChildren();
    setStatus("health-status", explainError(e, "Drift report"));
  }
}

// ---- files -------------------------------------------------------------------------------------------
async function takeFile(file) {
  if (!file) return;
  if (file.size > 4 * 1024 * 1024) return notice(`${file.name} is larger than 4 MiB, the server's request cap.`);
  const bytes = new Uint8Array(await file.arrayBuffer());
  const text = new TextDecoder("utf-8").decode(bytes);  // for reading; an unedited file is sent as its bytes
  state.file = { text, base64: base64(bytes) };
  $("message").value = text;
  const eml = /\.eml$/i.test(file.name) || file.type === "message/rfc822";
  $("input-kind").value = eml ? "email" : "text";
  $("file-name").textContent = `${file.name} (${eml ? "raw e-mail" : "text"})`;
  notice("");
}

function wireDrop() {
  const zone = $("check");
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("dropping");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dropping"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dropping");
    takeFile(e.dataTransfer.files[0]);
  });
  $("eml").addEventListener("change", (e) => takeFile(e.target.files[0]));
}

// ---- start -------------------------------------------------------------------------------------------
function refreshAll() {
  loadStatus();
  loadAdapters();
  refreshHealth();
}

function start() {
  const grafana = document.querySelector('meta[name="phishlens-grafana-url"]').content;
  if (grafana) {
    $("grafana").href = grafana;
    $("grafana").hidden = false;
  }
  showKeyState();
  $("key-form").addEventListener("submit", useKey);
  $("key-forget").addEventListener("click", () => {
    apiKey.set("");
    showKeyState();
    refreshAll();
  });
  $("check-form").addEventListener("submit", classify);
  $("message").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) classify(e);
  });
  $("fb-phishing").addEventListener("click", () => sendFeedback("phishing"));
  $("fb-legitimate").addEventListener("click", () => sendFeedback("legitimate"));
  $("why-form").addEventListener("submit", explain);
  $("explain-cancel").addEventListener("click", () => state.explainAbort?.abort());
  $("probe").addEventListener("click", probe);
  $("health-refresh").addEventListener("click", refreshHealth);
  wireDrop();
  let resize = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resize);
    resize = setTimeout(() => state.probe && renderLayerChart($("probe-chart"), state.probe.layers, state.probe.series), 150);
  });
  state.features = detectFeatures();
  refreshAll();
}

start();
