// Small DOM builders shared by the panels: elements from data, never HTML strings (no injection path).

const SVG_NS = "http://www.w3.org/2000/svg";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c) node.append(c);
  return node;
}

export const pct = (p) => `${(100 * p).toFixed(1)} %`;
export const short = (sha) => `${sha.slice(0, 12)}…`;
// attributions of a saturated model can be 1e-9: fixed decimals would print them all as 0.000
export const signed = (v) => `${v >= 0 ? "+" : "−"}${Math.abs(v) >= 0.001 || v === 0 ? Math.abs(v).toFixed(3)
  : Math.abs(v).toExponential(1)}`;

// Token highlights: each attribution binned against the largest one (4 steps per direction).
// Classes, not inline styles: the CSP forbids inline style.
export function attributionClass(value, maxAbs) {
  if (!maxAbs) return "";
  const r = Math.abs(value) / maxAbs;
  const step = r >= 0.85 ? 4 : r >= 0.6 ? 3 : r >= 0.35 ? 2 : r >= 0.1 ? 1 : 0;
  return step ? `${value > 0 ? "pos" : "neg"}-${step}` : "";
}

export function renderTokens(container, tokens, attributions) {
  const maxAbs = Math.max(0, ...attributions.map(Math.abs));
  container.replaceChildren(...tokens.map((tok, i) => {
    const a = attributions[i];
    const cls = attributionClass(a, maxAbs);
    return el("span", { class: cls ? `tok ${cls}` : "tok", "data-attribution": a.toFixed(6),
                        title: signed(a) }, tok);
  }));
}

// Words ranked by summed attribution (a word that occurs twice counts once, with both shares).
export function topWords(tokens, attributions, n = 6) {
  const sums = new Map();
  tokens.forEach((t, i) => {
    const w = t.trim();
    if (w) sums.set(w, (sums.get(w) || 0) + attributions[i]);
  });
  // words under 1 % of the strongest are noise, not reasons (a saturated model gives them 1e-37)
  const floor = 0.01 * Math.max(0, ...[...sums.values()].map(Math.abs));
  const all = [...sums.entries()].filter(([, v]) => Math.abs(v) > floor);
  const pos = all.filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).slice(0, n);
  const neg = all.filter(([, v]) => v < 0).sort((a, b) => a[1] - b[1]).slice(0, n);
  return { pos, neg };
}

// Line chart of per-layer values in [0, 1]: one polyline per series, a 0.5 guide, labelled axes.
export function renderLayerChart(root, layers, series) {
  // drawn at the element's own width so the labels stay legible on a phone
  const W = Math.max(300, Math.round(root.getBoundingClientRect().width) || 640);
  const H = W < 500 ? 240 : 300, L = 44, R = 12, T = 14, B = 40;
  root.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const x = (i) => L + (layers.length < 2 ? 0 : (i * (W - L - R)) / (layers.length - 1));
  const y = (p) => T + (1 - p) * (H - T - B);
  const title = root.querySelector("title");
  const parts = [title];
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(svg("line", { x1: L, x2: W - R, y1: y(p), y2: y(p), class: p === 0.5 ? "guide" : "grid" }));
    parts.push(svg("text", { x: L - 6, y: y(p) + 4, class: "axis", "text-anchor": "end", text: p.toFixed(2) }));
  }
  const every = Math.max(1, Math.ceil(layers.length / 12));
  layers.forEach((name, i) => {
    if (i % every && i !== layers.length - 1) return;
    const m = /layer\.(\d+)/.exec(name);
    parts.push(svg("text", { x: x(i), y: H - B + 18, class: "axis", "text-anchor": "middle", text: m ? m[1] : i }));
  });
  parts.push(svg("text", { x: (L + W - R) / 2, y: H - 4, class: "axis", "text-anchor": "middle", text: "layer" }));
  series.forEach((s, k) => {
    const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    parts.push(svg("polyline", { points: pts, class: `series s${k}`, "data-series": s.name }));
    s.values.forEach((v, i) => parts.push(svg("circle", { cx: x(i), cy: y(v), r: 3, class: `dot s${k}` },
      svg("title", { text: `${s.label}, ${layers[i]}: ${v.toFixed(3)}` }))));
  });
  root.replaceChildren(...parts);
}
