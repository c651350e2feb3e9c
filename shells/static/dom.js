// Small DOM and formatting helpers shared by the panel's parts.

const ATTRIBUTES = new Set(["for", "list", "role", "min", "max", "step"]);
let uid = 0;
export const nextId = (what) => `vt-${what}-${++uid}`;

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k in el && !k.startsWith("data-") && !k.startsWith("aria-") && !ATTRIBUTES.has(k)) el[k] = v;
    else el.setAttribute(k === "htmlFor" ? "for" : k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c);
  return el;
}

export function fmt(value) {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(+value.toPrecision(12));
  if (value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function stepsToText(steps) {
  return Array.isArray(steps) ? steps.map((s) => (s === null ? "~" : fmt(s))).join(" ") : fmt(steps);
}

export function textToSteps(text) {
  const t = text.trim();
  if (t.startsWith("[")) {
    try {
      return JSON.parse(t);
    } catch {
      return t; // the kernel explains what is wrong with it
    }
  }
  return t;
}

export function sameValue(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}
