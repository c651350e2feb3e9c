// Pictures in the panel: the pianoroll of a source module's next cycles.
//
// The kernel draws it (vtkernel.pictures.pianoroll, protocol `get_haps` with `svg`); the panel puts
// the SVG inline, so its `currentColor` text takes the theme's colours, and moves its playhead
// from telemetry.

import { h } from "./dom.js";

/** A source module without a step strip of its own gets a pianoroll; returns its element or null. */
export function ensurePianoroll(client, entry, name, mod) {
  const type = client.schema[mod.type];
  if (entry.roll || type?.role !== "pattern" || type.params?.steps) return entry.roll ?? null;
  entry.roll = h("div", { class: "vt-pianoroll", "data-vt-pianoroll": name, "aria-label": `${name}: the next cycles` });
  entry.fieldset.append(entry.roll);
  client.watchHaps(name);
  drawPianoroll(client, entry, name);
  return entry.roll;
}

export function drawPianoroll(client, entry, name) {
  const msg = client.haps.get(name);
  if (!entry?.roll || !msg) return;
  if (msg.error) {
    entry.roll.replaceChildren(h("div", { class: "vt-field-error", text: `pianoroll: ${msg.error.message}` }));
    return;
  }
  // Our kernel's own drawing (vtkernel.pictures.pianoroll): inline, so it takes the theme's colours.
  entry.roll.innerHTML = msg.svg ?? "";
  entry.roll.dataset.vtVersion = String(msg.version);
  entry.roll.dataset.vtHaps = String(msg.haps.length);
  // Drawn at the width it is shown at, so its text keeps the size the kernel chose: ask again once.
  const shown = entry.roll.clientWidth;
  const drawn = Number(entry.roll.querySelector("svg")?.getAttribute("width"));
  if (shown >= 160 && Math.abs(shown - drawn) > 40 && client.rollWidth !== Math.min(shown, 4096)) {
    client.rollWidth = Math.min(shown, 4096);
    const window = client.hapsWindows.get(name);
    if (window) client.watchHaps(name, window[0], true);
  }
  movePlayhead(client, entry, name);
}

export function movePlayhead(client, entry, name) {
  const svg = entry?.roll?.querySelector("svg[data-vt-cycles]");
  const head = svg?.querySelector("[data-vt-playhead]");
  if (!head) return;
  const [begin, end] = svg.dataset.vtCycles.split(" ").map(Number);
  const [left, right] = svg.dataset.vtPlot.split(" ").map(Number);
  const now = client.cycleNow(name);
  const shown = now !== null && client.telemetry?.playing && now >= begin && now <= end;
  head.setAttribute("visibility", shown ? "visible" : "hidden");
  if (shown) {
    const x = (left + ((now - begin) / (end - begin)) * (right - left)).toFixed(1);
    head.setAttribute("x1", x);
    head.setAttribute("x2", x);
  }
}
