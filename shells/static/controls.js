// Controls: each edits one value of the document (a param, or the bpm).
//
// Sync rules for a control (in the spirit of ipywidgets' echo_update):
// - one command in flight per control; newer values wait, latest wins;
// - while a control has a command in flight, a queued value, or is being
//   dragged, deltas for its value do not touch it (they may be stale);
// - what the user is typing is a draft, never overwritten by a delta;
// - when its ack (or error) arrives and nothing is queued, it shows the
//   newest mirror value.

import { fmt, h, nextId, sameValue, stepsToText, textToSteps } from "./dom.js";

const SLIDER_STEPS = 1000;
const STEP_KEYS = new Set(["ArrowUp", "ArrowDown", "PageUp", "PageDown"]);

function sliderScale(spec) {
  const lo = spec.min;
  const hi = spec.max;
  if (lo == null || hi == null || !(hi > lo)) return null;
  if (spec.kind === "int") {
    if (hi - lo > 256) return null;
    return { steps: hi - lo, toPos: (v) => Math.round(v - lo), fromPos: (p) => lo + Math.round(p) };
  }
  // Logarithmic when zero is excluded and the range spans decades (a rate in Hz).
  const floor = lo > 0 ? lo : hi / 1e5;
  if ((lo > 0 || (lo === 0 && spec.min_exclusive)) && hi / floor >= 1000) {
    const a = Math.log(floor);
    const b = Math.log(hi);
    return {
      steps: SLIDER_STEPS,
      toPos: (v) => Math.round((SLIDER_STEPS * (Math.log(Math.max(v, floor)) - a)) / (b - a)),
      fromPos: (p) => +Math.exp(a + ((b - a) * p) / SLIDER_STEPS).toPrecision(3),
    };
  }
  return {
    steps: SLIDER_STEPS,
    toPos: (v) => Math.round((SLIDER_STEPS * (v - lo)) / (hi - lo)),
    fromPos: (p) => +(lo + ((hi - lo) * p) / SLIDER_STEPS).toPrecision(4),
  };
}

function inRange(spec, v) {
  if (!Number.isFinite(v)) return false;
  if (spec.kind === "int" && !Number.isInteger(v)) return false;
  if (spec.min != null && (spec.min_exclusive ? v <= spec.min : v < spec.min)) return false;
  if (spec.max != null && v > spec.max) return false;
  return true;
}

// ---------------------------------------------------------------- one editable value

/**
 * A control bound to one value of the document (a param, or the bpm).
 * `read(doc)` gives its mirror value; `command(value)` the command to set it.
 */
export class Control {
  constructor(view, { read, command, label }) {
    // `label` names the value ("lfo1.rate"); subclasses build their inputs after this.
    this.view = view;
    this.read = read;
    this.command = command;
    this.label = label;
    this.inflight = null;
    this.queued = undefined;
    this.dragging = false;
    this.error = h("span", { class: "vt-field-error", role: "alert", id: nextId("err"), "data-vt-error-for": label });
  }

  commit(value) {
    if (this.inflight) {
      this.queued = value;
      return;
    }
    this.send(value);
  }

  send(value) {
    this.queued = undefined;
    this.inflight = this.view.client.command(this.command(value), (reply) => this.answered(reply, value));
  }

  answered(reply, value) {
    this.inflight = null;
    if (reply.type === "error") {
      // What the user typed stays (with the reason next to it) until they fix it or leave the field.
      this.error.textContent = `${reply.error.message}`;
      this.setInvalid(true);
      this.rejected();
    } else {
      this.error.textContent = "";
      this.setInvalid(false);
      if (this.queued === undefined) this.accepted(value);
    }
    if (this.queued !== undefined) {
      this.send(this.queued);
      return;
    }
    this.sync();
  }

  busy() {
    return this.inflight !== null || this.queued !== undefined || this.dragging;
  }

  /** Show the mirror's value unless the user owns the control right now (`force`: even if typing). */
  sync(force = false) {
    if (this.busy()) return;
    if (!force && this.editing()) return;
    const doc = this.view.client.doc;
    if (!doc) return;
    const value = this.read(doc);
    if (value === undefined) return;
    this.show(value);
  }

  editing() {
    return false;
  }

  /** The kernel took `value`: if the field still holds it, it is no longer an edit in progress. */
  accepted(_value) {}

  /** The kernel refused what the user typed: it stays in the field, as a draft, while they are there. */
  rejected() {}

  describe() {
    for (const el of this.inputs()) el.setAttribute("aria-describedby", this.error.id);
  }

  setInvalid(bad) {
    for (const el of this.inputs()) {
      if (bad) el.setAttribute("aria-invalid", "true");
      else el.removeAttribute("aria-invalid");
    }
  }

  inputs() {
    return [];
  }

  show(_value) {}
}

export class NumberControl extends Control {
  constructor(view, opts, spec, hook) {
    super(view, opts);
    this.spec = spec;
    this.scale = sliderScale(spec);
    const id = nextId("num");
    this.labelEl = h("label", { for: id, text: opts.shortLabel ?? opts.label });
    this.number = h("input", {
      type: "number",
      id,
      class: "vt-number",
      step: spec.kind === "int" ? "1" : "any",
      min: spec.min ?? undefined,
      max: spec.max ?? undefined,
      ...hook,
      "aria-describedby": undefined,
    });
    if (spec.doc) this.number.title = spec.doc;
    // Typing is a draft: nothing is sent until Enter, leaving the field (change) or a step
    // (arrow keys, PageUp/PageDown); a draft is never overwritten by a change from elsewhere.
    this.dirty = false;
    this.stepping = false;
    this.number.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.commitTyped();
      } else if (e.key === "Escape") {
        this.dirty = false;
        this.sync(true);
      } else if (STEP_KEYS.has(e.key)) {
        this.stepping = true; // the browser steps the value, then fires `input`
      }
    });
    this.number.addEventListener("input", () => {
      const stepped = this.stepping;
      this.stepping = false;
      this.dirty = true;
      const v = this.number.valueAsNumber;
      if (inRange(spec, v)) this.moveSlider(v);
      if (stepped) this.commitTyped();
    });
    this.number.addEventListener("change", () => this.commitTyped());
    this.number.addEventListener("blur", () => {
      if (!this.busy()) this.sync(true);
    });
    if (this.scale) {
      this.slider = h("input", {
        type: "range",
        class: "vt-slider",
        min: 0,
        max: this.scale.steps,
        step: 1,
        "aria-label": `${opts.label} slider`,
        "data-vt-slider": opts.label,
      });
      this.slider.addEventListener("input", () => {
        const v = this.scale.fromPos(this.slider.valueAsNumber);
        this.number.value = fmt(v);
        this.commit(v);
      });
      this.slider.addEventListener("pointerdown", () => {
        this.dragging = true;
        const up = () => {
          this.dragging = false;
          window.removeEventListener("pointerup", up);
          window.removeEventListener("pointercancel", up);
          this.sync(true);
        };
        window.addEventListener("pointerup", up);
        window.addEventListener("pointercancel", up);
      });
    }
  }

  inputs() {
    return [this.number];
  }

  rejected() {
    this.dirty = true;
  }

  /** Send what the field holds, once; an empty or unreadable field shows the kernel's value again. */
  commitTyped() {
    if (!this.dirty && !this.number.getAttribute("aria-invalid")) return;
    const v = this.number.value === "" ? NaN : this.number.valueAsNumber;
    this.dirty = false;
    if (!Number.isFinite(v)) {
      this.sync(true);
      return;
    }
    this.commit(v);
  }

  moveSlider(v) {
    if (this.slider) this.slider.value = String(this.scale.toPos(v));
  }

  editing() {
    return this.dirty && document.activeElement === this.number;
  }

  show(value) {
    const text = fmt(value);
    this.dirty = false;
    if (this.number.value !== text) this.number.value = text;
    if (typeof value === "number") this.moveSlider(value);
  }

  elements() {
    return [this.labelEl, this.slider ?? h("span", { class: "vt-slider-gap" }), this.number];
  }
}

export class SelectControl extends Control {
  constructor(view, opts, choices, hook) {
    super(view, opts);
    const id = nextId("sel");
    this.labelEl = h("label", { for: id, text: opts.shortLabel });
    this.select = h("select", { id, class: "vt-select", ...hook }, choices.map((c) => h("option", { value: c, text: c })));
    this.select.addEventListener("change", () => this.commit(this.select.value));
  }

  inputs() {
    return [this.select];
  }

  show(value) {
    this.select.value = String(value);
  }

  elements() {
    return [this.labelEl, this.select];
  }
}

export class BoolControl extends Control {
  constructor(view, opts, hook) {
    super(view, opts);
    const id = nextId("chk");
    this.labelEl = h("label", { for: id, text: opts.shortLabel });
    this.box = h("input", { type: "checkbox", id, class: "vt-check", ...hook });
    this.box.addEventListener("change", () => this.commit(this.box.checked));
  }

  inputs() {
    return [this.box];
  }

  show(value) {
    this.box.checked = !!value;
  }

  elements() {
    return [this.labelEl, this.box];
  }
}

export class TextControl extends Control {
  constructor(view, opts, spec, hook) {
    super(view, opts);
    this.steps = spec.kind === "steps";
    const id = nextId("txt");
    this.labelEl = h("label", { for: id, text: opts.shortLabel });
    this.input = h("input", {
      type: "text",
      id,
      class: this.steps ? "vt-text vt-steps-text" : "vt-text",
      spellcheck: false,
      autocomplete: "off",
      placeholder: this.steps ? "60 ~ 62 64*2  or  [60, null, 62]" : "",
      ...hook,
    });
    if (spec.doc) this.input.title = spec.doc + (this.steps ? " (Enter to apply)" : "");
    this.input.addEventListener("change", () => this.commit(this.steps ? textToSteps(this.input.value) : this.input.value));
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        this.input.dataset.shown = "";
        this.sync(true);
      }
    });
    this.viz = this.steps ? h("div", { class: "vt-steps", "aria-hidden": "true" }) : null;
  }

  inputs() {
    return [this.input];
  }

  editing() {
    return document.activeElement === this.input && this.input.value !== this.input.dataset.shown;
  }

  accepted(value) {
    const typed = this.steps ? textToSteps(this.input.value) : this.input.value;
    if (sameValue(typed, value)) this.input.dataset.shown = this.input.value;
  }

  show(value) {
    const text = this.steps ? stepsToText(value) : fmt(value);
    setText(this.input, text);
    this.input.dataset.shown = text;
    if (this.viz) this.drawSteps(value);
  }

  drawSteps(steps) {
    this.viz.replaceChildren();
    if (!Array.isArray(steps)) return;
    const nums = steps.filter((s) => typeof s === "number");
    const lo = Math.min(...nums);
    const hi = Math.max(...nums);
    for (const s of steps.slice(0, 64)) {
      const cell = h("span", { class: s === null ? "vt-step vt-rest" : "vt-step" });
      if (s !== null) cell.style.setProperty("--vt-level", hi > lo ? String(0.3 + (0.7 * (s - lo)) / (hi - lo)) : "0.65");
      this.viz.append(cell);
    }
  }

  elements() {
    return [this.labelEl, this.input];
  }
}

/**
 * A pattern param (kind "pattern"): mini-notation as text, or the JSON form of a pattern built in
 * Python. Enter or leaving the field sends it. A parse error is shown next to the field and the
 * user's text stays, even after they leave it, until it is accepted or they press Escape.
 */
export class PatternControl extends Control {
  constructor(view, opts, spec, hook) {
    super(view, opts);
    const id = nextId("pat");
    this.labelEl = h("label", { for: id, text: opts.shortLabel });
    this.input = h("input", {
      type: "text",
      id,
      class: "vt-text vt-pattern-text",
      spellcheck: false,
      autocomplete: "off",
      placeholder: "bd*2 [~ sd] <cp hh>",
      ...hook,
    });
    this.input.title = (spec.doc ? `${spec.doc} ` : "") + "(Enter to apply, Escape to undo your edit)";
    this.dirty = false;
    this.kept = false; // a rejected draft, kept until accepted or Escape
    this.input.addEventListener("input", () => {
      this.dirty = true;
    });
    this.input.addEventListener("change", () => this.commitTyped());
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.commitTyped();
      } else if (e.key === "Escape") {
        this.dirty = false;
        this.kept = false;
        this.error.textContent = "";
        this.setInvalid(false);
        this.sync(true);
      }
    });
  }

  commitTyped() {
    if (!this.dirty && !this.kept) return;
    this.dirty = false;
    this.commit(patternFromText(this.input.value));
  }

  rejected() {
    this.kept = true;
  }

  accepted() {
    this.kept = false;
  }

  inputs() {
    return [this.input];
  }

  editing() {
    return this.kept || (this.dirty && document.activeElement === this.input);
  }

  show(value) {
    this.dirty = false;
    setText(this.input, patternToText(value));
  }

  elements() {
    return [this.labelEl, this.input];
  }
}

/**
 * Show `text` in a text field. A field whose whole text is selected (the user is about to retype
 * it) stays selected, so what they type replaces the new value instead of being appended to it.
 */
function setText(input, text) {
  if (input.value === text) return;
  const all = document.activeElement === input && input.value.length > 0 && input.selectionStart === 0 && input.selectionEnd === input.value.length;
  input.value = text;
  if (all) input.select();
}

/** Mini-notation stays text; a pattern's JSON form (an object) is shown and read as JSON. */
function patternToText(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function patternFromText(text) {
  const t = text.trim();
  if (t.startsWith("{")) {
    try {
      return JSON.parse(t);
    } catch {
      return t; // the kernel says what is wrong with it
    }
  }
  return t;
}

export function guessSpec(value) {
  if (typeof value === "number") return { kind: "float" };
  if (typeof value === "boolean") return { kind: "bool" };
  if (Array.isArray(value)) return { kind: "steps" };
  return { kind: "string" };
}

export function makeControl(owner, module, param, spec) {
  const label = `${module}.${param}`;
  const opts = {
    label,
    shortLabel: param,
    read: (d) => d.modules?.[module]?.params?.[param],
    command: (value) => ({ op: "set_param", module, param, value }),
  };
  const hook = { "data-vt-param": label, "aria-label": label };
  if (spec.kind === "float" || spec.kind === "int") return new NumberControl(owner, opts, spec, hook);
  if (spec.kind === "enum") return new SelectControl(owner, opts, spec.choices || [], hook);
  if (spec.kind === "bool") return new BoolControl(owner, opts, hook);
  if (spec.kind === "pattern") return new PatternControl(owner, opts, spec, hook);
  return new TextControl(owner, opts, spec, hook);
}
