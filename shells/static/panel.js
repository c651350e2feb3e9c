// vtkernel panel: a protocol-v1 client in the browser (SPEC §4, §5).
//
// One VtClient per widget model (shared by every view of it in this window)
// keeps the mirror: snapshot, then deltas applied by base/version, resync on
// a gap. Commands carry ids unique to this window, so acks are matched to the
// control that sent them. Views render the mirror and never own state.
//
// Sync rules for a control (in the spirit of ipywidgets' echo_update):
// - one command in flight per control; newer values wait, latest wins;
// - while a control has a command in flight, a queued value, or is being
//   dragged, deltas for its value do not touch it (they may be stale);
// - when its ack (or error) arrives and nothing is queued, it shows the
//   newest mirror value.

const HELLO = { protocol: 1, shell: "editor", telemetry: true, script: true };
const COMM_TARGET = "vtkernel.state";
const PIANOROLL_CYCLES = 4; // cycles a pianoroll shows: a page, turned when the playhead leaves it
const HELLO_RETRY_MS = 2000;
const RESYNC_RETRY_MS = 2000;
const LOG_LIMIT = 200;
const HISTORY_LIMIT = 500;
const clients = new Map(); // panel_id -> VtClient

// ---------------------------------------------------------------- RFC 6902

function parsePointer(pointer) {
  if (pointer === "") return [];
  if (pointer[0] !== "/") throw new Error(`bad JSON pointer ${pointer}`);
  return pointer.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function arrayIndex(arr, seg, insert) {
  if (insert && seg === "-") return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(seg)) throw new Error(`bad array index ${seg}`);
  const i = Number(seg);
  if (i > arr.length || (!insert && i === arr.length)) throw new Error(`index ${i} out of range`);
  return i;
}

function shallow(node) {
  if (Array.isArray(node)) return node.slice();
  if (node !== null && typeof node === "object") return { ...node };
  throw new Error("cannot descend into a scalar");
}

function getAt(doc, parts) {
  let node = doc;
  for (const seg of parts) {
    if (Array.isArray(node)) node = node[arrayIndex(node, seg, false)];
    else if (node !== null && typeof node === "object" && Object.hasOwn(node, seg)) node = node[seg];
    else throw new Error(`no member ${seg}`);
  }
  return node;
}

// Copy the containers along `parts`, then edit the parent of the last segment.
function editAt(doc, parts, edit) {
  if (parts.length === 0) throw new Error("cannot edit the root this way");
  const root = shallow(doc);
  let node = root;
  for (const seg of parts.slice(0, -1)) {
    let key = seg;
    if (Array.isArray(node)) key = arrayIndex(node, seg, false);
    else if (!Object.hasOwn(node, seg)) throw new Error(`no member ${seg}`);
    node[key] = shallow(node[key]);
    node = node[key];
  }
  edit(node, parts[parts.length - 1]);
  return root;
}

/** Apply RFC 6902 ops; returns a new document and leaves `doc` untouched. Throws on a bad patch. */
export function applyPatch(doc, ops) {
  for (const op of ops) {
    const parts = parsePointer(op.path);
    switch (op.op) {
      case "add":
        doc = parts.length === 0 ? op.value : editAt(doc, parts, (p, k) => {
          if (Array.isArray(p)) p.splice(arrayIndex(p, k, true), 0, op.value);
          else p[k] = op.value;
        });
        break;
      case "remove":
        doc = editAt(doc, parts, (p, k) => {
          if (Array.isArray(p)) p.splice(arrayIndex(p, k, false), 1);
          else if (Object.hasOwn(p, k)) delete p[k];
          else throw new Error(`no member ${k} to remove`);
        });
        break;
      case "replace":
        doc = parts.length === 0 ? op.value : editAt(doc, parts, (p, k) => {
          if (Array.isArray(p)) p[arrayIndex(p, k, false)] = op.value;
          else if (Object.hasOwn(p, k)) p[k] = op.value;
          else throw new Error(`no member ${k} to replace`);
        });
        break;
      case "move":
      case "copy": {
        const from = parsePointer(op.from);
        const value = getAt(doc, from);
        if (op.op === "move") doc = editAt(doc, from, (p, k) => (Array.isArray(p) ? p.splice(Number(k), 1) : delete p[k]));
        doc = parts.length === 0 ? value : editAt(doc, parts, (p, k) => {
          if (Array.isArray(p)) p.splice(arrayIndex(p, k, true), 0, value);
          else p[k] = value;
        });
        break;
      }
      case "test":
        if (JSON.stringify(getAt(doc, parts)) !== JSON.stringify(op.value)) throw new Error(`test failed at ${op.path}`);
        break;
      default:
        throw new Error(`unknown patch op ${op.op}`);
    }
  }
  return doc;
}

// ---------------------------------------------------------------- the client

let windowTag = Math.random().toString(36).slice(2, 8);

// How a client reaches the kernel. First through its widget's own messages; after a kernel
// restart (the widget's comm died with the old kernel) through a comm of its own on target
// `vtkernel.state` of the new kernel, exactly as any other protocol client does.
function widgetTransport(model, onMessage) {
  const handler = (msg) => onMessage(msg);
  model.on("msg:custom", handler);
  return {
    kind: "widget",
    hello: (hello) => model.send({ type: "hello", hello }),
    send: (msg) => model.send(msg),
    close: () => model.off("msg:custom", handler),
  };
}

function commTransport(kernel, onMessage, onClose) {
  const comm = kernel.createComm(COMM_TARGET);
  comm.onMsg = (msg) => onMessage(msg.content.data);
  comm.onClose = () => onClose();
  let opened = false;
  return {
    kind: "comm",
    hello: (hello) => {
      if (opened) comm.send({ type: "resync" }); // iopub may have missed our snapshot (slow joiner)
      else comm.open(hello);
      opened = true;
    },
    send: (msg) => comm.send(msg),
    close: () => {
      comm.onClose = () => {};
      try {
        if (!comm.isDisposed) comm.close();
      } catch {
        // the kernel it belonged to is gone already
      }
    },
  };
}

// Kernel statuses after which the widget's comm (or our own) is gone.
const KERNEL_GONE = new Set(["restarting", "autorestarting", "dead"]);

class VtClient {
  constructor(model) {
    this.model = model;
    this.tag = `p${windowTag}${Math.random().toString(36).slice(2, 6)}`;
    this.seq = 0;
    this.doc = null;
    this.version = null;
    this.schema = {};
    this.script = null; // {version, text}
    this.telemetry = null;
    this.status = "connecting";
    this.notice = "";
    this.replies = new Map(); // id -> callback(reply)
    this.listeners = new Set();
    this.log = []; // command shell entries, shared by every view
    this.history = [];
    this.resyncing = false;
    this.resyncTimer = null;
    this.haps = new Map(); // module -> the newest `haps` message (its pianoroll), kept fresh by the kernel
    this.hapsWindows = new Map(); // module -> [begin, end] cycles asked for
    this.transport = widgetTransport(model, (msg) => this.receive(msg));
    // JupyterLab and Notebook 7 give the widget manager's kernel connection; elsewhere there is none.
    this.kernel = model.widget_manager?.kernel ?? null;
    this.onKernelStatus = (_kernel, status) => this.kernelStatus(status);
    this.kernel?.statusChanged?.connect(this.onKernelStatus);
    this.onKernelConnection = (_kernel, status) => {
      if (status === "disconnected") this.lost("the connection to the kernel is closed");
    };
    this.onKernelDisposed = () => this.lost("the kernel was shut down");
    this.kernel?.connectionStatusChanged?.connect(this.onKernelConnection);
    this.kernel?.disposed?.connect(this.onKernelDisposed);
    this.onCommLive = () => {
      if (!this.kernel || KERNEL_GONE.has(this.kernel.status)) this.lost("the kernel restarted");
    };
    this.onCommClose = () => this.lost("the panel was closed in the kernel");
    model.on("comm_live_update", this.onCommLive);
    model.on("comm:close", this.onCommClose);
    this.hello();
  }

  hello() {
    this.transport.hello(HELLO);
    clearTimeout(this.helloTimer);
    this.helloTimer = setTimeout(() => {
      if (this.version === null && this.status !== "disconnected") {
        this.setStatus("waiting for the kernel…");
        this.hello();
      }
    }, HELLO_RETRY_MS);
  }

  dispose() {
    clearTimeout(this.helloTimer);
    clearTimeout(this.resyncTimer);
    this.transport.close();
    this.kernel?.statusChanged?.disconnect(this.onKernelStatus);
    this.kernel?.connectionStatusChanged?.disconnect(this.onKernelConnection);
    this.kernel?.disposed?.disconnect(this.onKernelDisposed);
    this.model.off("comm_live_update", this.onCommLive);
    this.model.off("comm:close", this.onCommClose);
    this.listeners.clear();
  }

  // ----- the kernel going away and coming back

  kernelStatus(status) {
    if (KERNEL_GONE.has(status)) {
      this.lost(status === "dead" ? "the kernel is dead" : "the kernel restarted");
    } else if (status === "idle" && this.status === "disconnected" && this.kernel?.connectionStatus === "connected") {
      this.reconnect();
    }
  }

  /** The kernel behind this client is gone: say so, and answer every pending request at once. */
  lost(why) {
    if (this.status === "disconnected") return;
    clearTimeout(this.helloTimer);
    clearTimeout(this.resyncTimer);
    this.resyncing = false;
    this.version = null;
    this.telemetry = null;
    this.setNotice(`${why}. This panel shows the last patch it saw, and reconnects when the kernel is back.`);
    this.setStatus("disconnected");
    this.failPending(why);
  }

  failPending(why) {
    const pending = [...this.replies.entries()];
    this.replies.clear();
    for (const [id, onReply] of pending) onReply({ type: "error", id, error: { code: "disconnected", message: why } });
  }

  /** Subscribe to the new kernel through a comm of our own (the widget's comm died with the old one). */
  reconnect() {
    if (!this.kernel?.createComm) return;
    this.transport.close();
    this.transport = commTransport(
      this.kernel,
      (msg) => this.receive(msg),
      () => this.lost("the kernel closed this panel's connection"),
    );
    this.reconnected = true;
    this.setStatus("connecting");
    this.hello();
  }

  // ----- pianorolls: the kernel computes what a source module plays (protocol `get_haps`)

  /** Keep the haps of `module` over PIANOROLL_CYCLES cycles from `begin` fresh; idempotent. */
  watchHaps(module, begin = this.pageStart(module), force = false) {
    const window = [begin, begin + PIANOROLL_CYCLES];
    const old = this.hapsWindows.get(module);
    if (!force && old && old[0] === window[0] && old[1] === window[1]) return;
    this.hapsWindows.set(module, window);
    const width = Math.round(this.rollWidth || 640);
    this.request({ type: "get_haps", module, cycles: window, svg: true, watch: true, width }, (reply) => {
      if (reply.type === "error") {
        this.hapsWindows.delete(module);
        this.haps.set(module, { module, error: reply.error });
        this.emit("haps", module);
      }
    });
  }

  forgetHaps(module) {
    this.hapsWindows.delete(module);
    this.haps.delete(module);
  }

  /** The cycle a source module is at now (from telemetry), or null. */
  cycleNow(module) {
    const t = this.telemetry;
    const beats = this.haps.get(module)?.cycle_beats;
    if (!t || typeof t.beat !== "number" || !beats) return null;
    return t.beat / beats;
  }

  pageStart(module) {
    const now = this.cycleNow(module);
    return now === null ? 0 : Math.floor(now / PIANOROLL_CYCLES) * PIANOROLL_CYCLES;
  }

  /** When the playhead leaves a pianoroll's window, ask for the next page of cycles. */
  followPlayhead() {
    if (!this.telemetry?.playing) return;
    for (const [module, [begin, end]] of this.hapsWindows) {
      const now = this.cycleNow(module);
      if (now !== null && (now >= end || now < begin)) this.watchHaps(module, this.pageStart(module));
    }
  }

  setNotice(text) {
    this.notice = text;
    this.emit("notice", text);
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(kind, detail) {
    for (const fn of [...this.listeners]) {
      try {
        fn(kind, detail);
      } catch (err) {
        console.error("vtkernel panel:", err);
      }
    }
  }

  setStatus(status) {
    this.status = status;
    this.emit("status");
  }

  /** Send a client message that expects an ack or error; `onReply(msg)` gets it. Returns the id. */
  request(msg, onReply) {
    const id = `${this.tag}-${++this.seq}`;
    if (this.status === "disconnected") {
      // Nothing would answer: say so now rather than leave the request pending for ever.
      if (onReply) queueMicrotask(() => onReply({ type: "error", id, error: { code: "disconnected", message: "not connected to a kernel" } }));
      return id;
    }
    if (onReply) this.replies.set(id, onReply);
    this.transport.send({ ...msg, id });
    return id;
  }

  command(command, onReply) {
    return this.request({ type: "command", command }, onReply);
  }

  resync() {
    if (this.resyncing) return;
    this.resyncing = true;
    this.setStatus("resyncing…");
    this.transport.send({ type: "resync" });
    clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => {
      this.resyncing = false;
      if (this.status === "resyncing…") this.resync();
    }, RESYNC_RETRY_MS);
  }

  receive(msg) {
    if (!msg || typeof msg !== "object") return;
    switch (msg.type) {
      case "snapshot":
        clearTimeout(this.helloTimer);
        clearTimeout(this.resyncTimer);
        this.resyncing = false;
        this.doc = msg.state;
        this.version = msg.version;
        if (this.reconnected) {
          this.reconnected = false;
          this.setNotice(`Reconnected to the restarted kernel (v${msg.version}).`);
          const windows = [...this.hapsWindows.entries()];
          this.hapsWindows.clear(); // a new subscription: ask again for what the views show
          for (const [module, [begin]] of windows) if (msg.state.modules?.[module]) this.watchHaps(module, begin);
        }
        this.setStatus("live");
        this.emit("doc", { full: true, ops: [] });
        break;
      case "delta": {
        if (this.version === null || this.resyncing) return;
        if (msg.base !== this.version) {
          this.resync();
          return;
        }
        try {
          this.doc = applyPatch(this.doc, msg.ops);
        } catch (err) {
          console.warn("vtkernel panel: a delta did not apply; resyncing", err);
          this.resync();
          return;
        }
        this.version = msg.version;
        this.emit("doc", { full: false, ops: msg.ops, origin: msg.origin });
        break;
      }
      case "schema":
        this.schema = msg.types || {};
        this.emit("schema");
        break;
      case "script":
        this.script = { version: msg.version, text: msg.text };
        this.emit("script");
        break;
      case "telemetry":
        this.telemetry = msg;
        this.emit("telemetry");
        this.followPlayhead();
        break;
      case "haps":
        if (msg.id != null) {
          const onReply = this.replies.get(msg.id);
          this.replies.delete(msg.id);
          onReply?.(msg);
        }
        if (this.hapsWindows.has(msg.module)) {
          this.haps.set(msg.module, msg);
          this.emit("haps", msg.module);
        }
        break;
      case "ack":
      case "error": {
        const onReply = msg.id == null ? undefined : this.replies.get(msg.id);
        if (onReply) {
          this.replies.delete(msg.id);
          onReply(msg);
        } else if (msg.type === "error" && msg.id == null) {
          this.setNotice(`error [${msg.error.code}] ${msg.error.message}`);
        }
        break;
      }
      default:
        break; // other windows' traffic, or a newer protocol's extras
    }
  }

  // ----- the command shell's shared state

  runText(text) {
    const entry = { text, result: null, kind: "pending" };
    this.log.push(entry);
    if (this.log.length > LOG_LIMIT) this.log.splice(0, this.log.length - LOG_LIMIT);
    if (this.history[this.history.length - 1] !== text) this.history.push(text);
    if (this.history.length > HISTORY_LIMIT) this.history.shift();
    this.emit("log");
    this.request({ type: "text", text }, (reply) => {
      if (reply.type === "ack") {
        entry.kind = "ok";
        entry.result = reply.output != null ? reply.output : `ok v${reply.version}`;
      } else {
        entry.kind = "error";
        entry.result = `error [${reply.error.code}] ${reply.error.message}`;
      }
      this.emit("log");
    });
  }
}

// ---------------------------------------------------------------- DOM helpers

const ATTRIBUTES = new Set(["for", "list", "role", "min", "max", "step"]);
let uid = 0;
const nextId = (what) => `vt-${what}-${++uid}`;

function h(tag, attrs = {}, ...children) {
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

function fmt(value) {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(+value.toPrecision(12));
  if (value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function stepsToText(steps) {
  return Array.isArray(steps) ? steps.map((s) => (s === null ? "~" : fmt(s))).join(" ") : fmt(steps);
}

function textToSteps(text) {
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

function sameValue(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// A slider's position (0..SLIDER_STEPS) <-> a value; logarithmic for wide positive ranges.
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
class Control {
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

class NumberControl extends Control {
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

class SelectControl extends Control {
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

class BoolControl extends Control {
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

class TextControl extends Control {
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
    this.input.value = text;
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
class PatternControl extends Control {
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
    const text = patternToText(value);
    if (this.input.value !== text) this.input.value = text;
  }

  elements() {
    return [this.labelEl, this.input];
  }
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

// ---------------------------------------------------------------- the view

class PanelView {
  constructor(client, el, model) {
    this.client = client;
    this.model = model;
    this.modules = new Map(); // name -> {type, fieldset, controls: Map(param -> Control)}
    this.connKey = null;
    this.portsKey = null;
    this.historyPos = null;
    this.mode = "view";
    this.build(el);
    this.unsubscribe = client.subscribe((kind, detail) => this.update(kind, detail));
    this.renderAll();
  }

  dispose() {
    this.unsubscribe();
    this.resizeObserver.disconnect();
  }

  build(el) {
    const c = this.client;
    this.status = h("span", { class: "vt-status", role: "status", "aria-live": "polite" });
    this.notice = h("div", { class: "vt-notice", role: "alert" });

    // ----- editor: clock
    this.bpm = new NumberControl(
      this,
      { label: "bpm", shortLabel: "BPM", read: (d) => d.clock?.bpm, command: (v) => ({ op: "set_bpm", bpm: v }) },
      { kind: "float", min: 20, max: 999, doc: "tempo in beats per minute (20..999)" },
      { "data-vt-clock": "bpm" },
    );
    this.bpm.slider = null;
    this.transport = h("button", {
      type: "button",
      class: "vt-button vt-transport",
      "data-vt-transport": "",
      "aria-pressed": "false",
      onclick: () => {
        const playing = !!c.doc?.clock?.playing;
        c.command({ op: playing ? "stop" : "play" }, (r) => this.editorReply(r));
      },
    });
    this.beat = h("span", { class: "vt-beat", "aria-label": "beat position", text: "beat —" });
    const clock = h(
      "div",
      { class: "vt-clock", role: "group", "aria-label": "Clock" },
      this.bpm.labelEl,
      this.bpm.number,
      this.transport,
      this.beat,
      this.bpm.error,
    );

    // ----- editor: modules
    this.moduleList = h("div", { class: "vt-modules" });
    this.empty = h("p", { class: "vt-empty", text: "No modules yet: add one below, or run `vt.module(\"lfo1\", \"lfo\")` in a cell." });
    const nameId = nextId("name");
    const typeId = nextId("type");
    this.newName = h("input", { id: nameId, type: "text", class: "vt-text vt-short", placeholder: "lfo3", autocomplete: "off", spellcheck: false });
    this.newType = h("select", { id: typeId, class: "vt-select" });
    const addForm = h(
      "form",
      {
        class: "vt-row vt-add-module",
        "aria-label": "Add a module",
        onsubmit: (e) => {
          e.preventDefault();
          const name = this.newName.value.trim();
          if (!name) return this.newName.focus();
          c.command({ op: "add_module", name, type: this.newType.value }, (r) => {
            this.editorReply(r);
            if (r.type === "ack") this.newName.value = "";
          });
        },
      },
      h("label", { for: nameId, text: "Add module" }),
      this.newName,
      h("label", { for: typeId, class: "vt-sr", text: "of type" }),
      this.newType,
      h("button", { type: "submit", class: "vt-button", text: "Add" }),
    );

    // ----- editor: connections
    this.connList = h("ul", { class: "vt-connections", "aria-label": "Connections" });
    const srcId = nextId("src");
    const dstId = nextId("dst");
    this.src = h("select", { id: srcId, class: "vt-select" });
    this.dst = h("select", { id: dstId, class: "vt-select" });
    const connForm = h(
      "form",
      {
        class: "vt-row vt-add-connection",
        "aria-label": "Add a connection",
        onsubmit: (e) => {
          e.preventDefault();
          if (!this.src.value || !this.dst.value) return;
          c.command({ op: "connect", src: this.src.value, dst: this.dst.value }, (r) => this.editorReply(r));
        },
      },
      h("label", { for: srcId, text: "Connect" }),
      this.src,
      h("label", { for: dstId, text: "→", "aria-label": "to" }),
      this.dst,
      h("button", { type: "submit", class: "vt-button", text: "Connect" }),
    );
    this.editorMsg = h("div", { class: "vt-field-error", role: "alert" });
    const editor = h(
      "section",
      { class: "vt-editor", "aria-label": "Editor" },
      clock,
      this.empty,
      this.moduleList,
      addForm,
      h("h4", { class: "vt-heading", text: "Connections" }),
      this.connList,
      connForm,
      this.editorMsg,
    );

    // ----- command shell
    this.log = h("div", { class: "vt-log", role: "log", "aria-live": "polite", "aria-label": "Command results" });
    // Stay scrolled to the newest result when the layout changes (theme, width), unless the user scrolled up.
    this.logPinned = true;
    this.log.addEventListener("scroll", () => {
      this.logPinned = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 8;
    });
    this.resizeObserver = new ResizeObserver(() => {
      if (this.logPinned) this.log.scrollTop = this.log.scrollHeight;
    });
    this.resizeObserver.observe(this.log);
    const cmdId = nextId("cmd");
    this.cmd = h("input", {
      id: cmdId,
      type: "text",
      class: "vt-command-input",
      "data-vt-command": "",
      autocomplete: "off",
      spellcheck: false,
      placeholder: "set lfo1.rate 3   (help lists commands; ↑/↓ history)",
    });
    this.cmd.addEventListener("keydown", (e) => this.commandKey(e));
    const commandShell = h(
      "section",
      { class: "vt-command-shell", "aria-label": "Command shell" },
      this.log,
      h("div", { class: "vt-prompt" }, h("label", { for: cmdId, class: "vt-prompt-label", text: "vt>" }), this.cmd),
    );

    // ----- code shell
    const scriptId = nextId("script");
    this.script = h("textarea", {
      id: scriptId,
      class: "vt-script",
      "data-vt-script": "",
      readOnly: true,
      spellcheck: false,
      rows: 12,
      wrap: "off",
      placeholder: "The script that rebuilds the document appears here.",
    });
    this.script.addEventListener("keydown", (e) => {
      if (this.mode !== "edit") return;
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        this.applyScript();
      } else if (e.key === "Escape") {
        e.preventDefault();
        this.setMode("view");
      }
    });
    this.modeLabel = h("span", { class: "vt-mode", "aria-live": "polite" });
    this.editBtn = h("button", { type: "button", class: "vt-button", text: "Edit", onclick: () => this.setMode("edit") });
    this.applyBtn = h("button", { type: "button", class: "vt-button vt-primary", text: "Apply", title: "Ctrl+Enter", onclick: () => this.applyScript() });
    this.cancelBtn = h("button", { type: "button", class: "vt-button", text: "Cancel", title: "Escape", onclick: () => this.setMode("view") });
    this.codeMsg = h("div", { class: "vt-code-msg", role: "status" });
    const codeShell = h(
      "section",
      { class: "vt-code-shell", "aria-label": "Code shell" },
      h(
        "div",
        { class: "vt-code-bar" },
        h("label", { for: scriptId, class: "vt-heading", text: "Script" }),
        this.modeLabel,
        h("span", { class: "vt-spacer" }),
        this.editBtn,
        this.applyBtn,
        this.cancelBtn,
      ),
      this.script,
      this.codeMsg,
    );

    this.root = h(
      "div",
      { class: "vt-panel", role: "region", "aria-label": "vtkernel panel", "data-vt-panel": "", "data-lm-suppress-shortcuts": "true" },
      h("div", { class: "vt-bar" }, h("strong", { class: "vt-title", text: this.model.get("title") || "vtkernel" }), this.status),
      this.notice,
      h("div", { class: "vt-body" }, editor, h("div", { class: "vt-side" }, commandShell, codeShell)),
    );
    // Keys typed into the panel are the panel's: keep notebook shortcuts (a, b, dd...) out of them.
    this.root.addEventListener("keydown", (e) => {
      const t = e.target;
      if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement) {
        if (!(e.key === "Enter" && e.shiftKey)) e.stopPropagation();
      }
    });
    el.replaceChildren(this.root);
    this.setMode("view");
  }

  // ----- updates from the client

  update(kind, detail) {
    if (kind === "doc") this.renderDoc(detail);
    else if (kind === "schema") this.renderAll();
    else if (kind === "script") this.renderScript();
    else if (kind === "telemetry") this.renderTelemetry();
    else if (kind === "haps") this.renderPianoroll(detail);
    else if (kind === "log") this.renderLog();
    else if (kind === "status") this.renderStatus();
    else if (kind === "notice") this.notice.textContent = detail;
  }

  renderAll() {
    const types = Object.keys(this.client.schema).sort();
    const keep = this.newType.value;
    this.newType.replaceChildren(...types.map((t) => h("option", { value: t, text: t })));
    if (types.includes(keep)) this.newType.value = keep;
    else if (types.includes("lfo")) this.newType.value = "lfo";
    for (const entry of this.modules.values()) entry.fieldset.remove();
    this.modules.clear();
    this.portsKey = null;
    this.renderDoc({ full: true });
    this.renderScript();
    this.renderLog();
    this.renderStatus();
    this.renderTelemetry();
    this.notice.textContent = this.client.notice;
  }

  renderStatus() {
    const c = this.client;
    const v = c.version === null ? "" : `v${c.version} · `;
    this.status.textContent = `${v}${c.status}`;
    this.root.dataset.vtStatus = c.status;
  }

  renderDoc(detail) {
    const doc = this.client.doc;
    if (!doc) return;
    const modules = doc.modules || {};
    // modules: keyed; a module whose type changed is rebuilt
    for (const [name, entry] of this.modules) {
      if (!modules[name] || modules[name].type !== entry.type) {
        entry.fieldset.remove();
        this.modules.delete(name);
        this.client.forgetHaps(name);
      }
    }
    const names = Object.keys(modules).sort();
    let before = null;
    for (const name of [...names].reverse()) {
      let entry = this.modules.get(name);
      if (!entry) {
        entry = this.buildModule(name, modules[name]);
        this.modules.set(name, entry);
        this.moduleList.insertBefore(entry.fieldset, before);
      } else if (entry.fieldset.nextSibling !== before) {
        this.moduleList.insertBefore(entry.fieldset, before);
      }
      before = entry.fieldset;
      this.ensureParams(entry, name, modules[name]);
      this.ensurePianoroll(entry, name, modules[name]);
    }
    this.empty.hidden = names.length > 0;
    const touched = detail && !detail.full ? touchedParams(detail.ops) : null;
    for (const [name, entry] of this.modules) {
      for (const [param, control] of entry.controls) {
        if (!touched || touched.has(name) || touched.has(`${name}.${param}`)) control.sync();
      }
    }
    this.bpm.sync();
    const playing = !!doc.clock?.playing;
    this.transport.textContent = playing ? "■ Stop" : "▶ Play";
    this.transport.setAttribute("aria-pressed", String(playing));
    this.transport.setAttribute("aria-label", playing ? "Stop the transport" : "Start the transport");
    this.renderConnections(doc);
    this.renderPorts(doc);
    this.root.dataset.vtVersion = String(this.client.version);
    this.renderStatus();
  }

  buildModule(name, mod) {
    const remove = h("button", {
      type: "button",
      class: "vt-icon-button",
      "aria-label": `Remove module ${name}`,
      title: `Remove ${name}`,
      text: "×",
      onclick: () => this.client.command({ op: "remove_module", name }, (r) => this.editorReply(r)),
    });
    const grid = h("div", { class: "vt-params" });
    const fieldset = h(
      "fieldset",
      { class: "vt-module", "data-vt-module": name },
      h("legend", {}, h("span", { class: "vt-module-name", text: name }), h("span", { class: "vt-module-type", text: mod.type }), remove),
      grid,
    );
    return { type: mod.type, fieldset, grid, controls: new Map() };
  }

  ensureParams(entry, name, mod) {
    const specs = this.client.schema[mod.type]?.params || {};
    // The schema's order (how the type's author listed them), then any param it does not know.
    const params = Object.keys(specs).filter((p) => Object.hasOwn(mod.params || {}, p));
    for (const p of Object.keys(mod.params || {})) if (!params.includes(p)) params.push(p);
    for (const param of params) {
      if (entry.controls.has(param)) continue;
      const spec = specs[param] || guessSpec(mod.params[param]);
      const control = this.makeControl(name, param, spec);
      control.describe();
      entry.controls.set(param, control);
      const row = h("div", { class: `vt-param vt-kind-${spec.kind}` }, control.elements(), control.error);
      entry.grid.append(row);
      if (control.viz) entry.grid.append(h("div", { class: "vt-param vt-steps-row" }, h("span"), control.viz));
      control.sync(true);
    }
  }

  /** A source module without a step strip of its own gets a pianoroll of its next cycles. */
  ensurePianoroll(entry, name, mod) {
    const type = this.client.schema[mod.type];
    if (entry.roll || type?.role !== "pattern" || type.params?.steps) return;
    entry.roll = h("div", { class: "vt-pianoroll", "data-vt-pianoroll": name, "aria-label": `${name}: the next cycles` });
    entry.fieldset.append(entry.roll);
    this.client.watchHaps(name);
    this.renderPianoroll(name);
  }

  renderPianoroll(name) {
    const entry = this.modules.get(name);
    const msg = this.client.haps.get(name);
    if (!entry?.roll || !msg) return;
    if (msg.error) {
      entry.roll.replaceChildren(h("div", { class: "vt-field-error", text: `pianoroll: ${msg.error.message}` }));
      return;
    }
    // Our kernel's own drawing (vtkernel.pictures.pianoroll): inline, so it takes the theme's colours.
    entry.roll.innerHTML = msg.svg ?? "";
    // Drawn at the width it is shown at, so its text keeps the size the kernel chose: ask again once.
    const shown = entry.roll.clientWidth;
    const drawn = Number(entry.roll.querySelector("svg")?.getAttribute("width"));
    if (shown >= 160 && Math.abs(shown - drawn) > 40 && this.client.rollWidth !== Math.min(shown, 4096)) {
      this.client.rollWidth = Math.min(shown, 4096);
      const window = this.client.hapsWindows.get(name);
      if (window) this.client.watchHaps(name, window[0], true);
    }
    entry.roll.dataset.vtVersion = String(msg.version);
    entry.roll.dataset.vtHaps = String(msg.haps.length);
    this.movePlayhead(name);
  }

  movePlayhead(name) {
    const svg = this.modules.get(name)?.roll?.querySelector("svg[data-vt-cycles]");
    const head = svg?.querySelector("[data-vt-playhead]");
    if (!head) return;
    const [begin, end] = svg.dataset.vtCycles.split(" ").map(Number);
    const [left, right] = svg.dataset.vtPlot.split(" ").map(Number);
    const now = this.client.cycleNow(name);
    const shown = now !== null && this.client.telemetry?.playing && now >= begin && now <= end;
    head.setAttribute("visibility", shown ? "visible" : "hidden");
    if (shown) {
      const x = (left + ((now - begin) / (end - begin)) * (right - left)).toFixed(1);
      head.setAttribute("x1", x);
      head.setAttribute("x2", x);
    }
  }

  makeControl(module, param, spec) {
    const label = `${module}.${param}`;
    const opts = {
      label,
      shortLabel: param,
      read: (d) => d.modules?.[module]?.params?.[param],
      command: (value) => ({ op: "set_param", module, param, value }),
    };
    const hook = { "data-vt-param": label, "aria-label": label };
    if (spec.kind === "float" || spec.kind === "int") return new NumberControl(this, opts, spec, hook);
    if (spec.kind === "enum") return new SelectControl(this, opts, spec.choices || [], hook);
    if (spec.kind === "bool") return new BoolControl(this, opts, hook);
    if (spec.kind === "pattern") return new PatternControl(this, opts, spec, hook);
    return new TextControl(this, opts, spec, hook);
  }

  renderConnections(doc) {
    const conns = doc.connections || [];
    const key = JSON.stringify(conns);
    if (key === this.connKey) return;
    this.connKey = key;
    const focused = document.activeElement?.dataset?.vtConnection;
    const items = conns.map(({ src, dst }) => {
      const id = `${src} ${dst}`;
      return h(
        "li",
        { class: "vt-connection" },
        h("span", { class: "vt-port", text: src }),
        h("span", { class: "vt-arrow", "aria-hidden": "true", text: " → " }),
        h("span", { class: "vt-port", text: dst }),
        h("button", {
          type: "button",
          class: "vt-icon-button",
          "data-vt-connection": id,
          "aria-label": `Disconnect ${src} from ${dst}`,
          title: "Disconnect",
          text: "×",
          onclick: () => this.client.command({ op: "disconnect", src, dst }, (r) => this.editorReply(r)),
        }),
      );
    });
    if (!items.length) items.push(h("li", { class: "vt-empty", text: "none" }));
    this.connList.replaceChildren(...items);
    if (focused) this.connList.querySelector(`[data-vt-connection="${CSS.escape(focused)}"]`)?.focus();
  }

  renderPorts(doc) {
    const modules = doc.modules || {};
    const outs = [];
    const ins = [];
    for (const name of Object.keys(modules).sort()) {
      const spec = this.client.schema[modules[name].type] || {};
      for (const port of spec.outputs || ["out"]) outs.push(`${name}.${port}`);
      for (const port of spec.inputs || Object.keys(modules[name].params || {})) ins.push(`${name}.${port}`);
    }
    const key = JSON.stringify([outs, ins]);
    if (key === this.portsKey) return;
    this.portsKey = key;
    for (const [select, ports] of [[this.src, outs], [this.dst, ins]]) {
      const keep = select.value;
      select.replaceChildren(...ports.map((p) => h("option", { value: p, text: p })));
      if (ports.includes(keep)) select.value = keep;
    }
  }

  renderTelemetry() {
    const t = this.client.telemetry;
    const beat = t && typeof t.beat === "number" ? t.beat : null;
    this.beat.textContent = beat === null ? "beat —" : `beat ${beat.toFixed(2)}`;
    // The step each sequencer is playing: a pure function of the beat (patterns keep their phase).
    const modules = this.client.doc?.modules || {};
    for (const [name, entry] of this.modules) {
      if (entry.roll) this.movePlayhead(name);
      const steps = entry.controls.get("steps");
      if (!steps?.viz) continue;
      const cells = steps.viz.children;
      const division = modules[name]?.params?.division ?? 4;
      const n = modules[name]?.params?.steps?.length || 0;
      const now = beat !== null && t.playing && n ? Math.floor(beat * division + 1e-9) % n : -1;
      for (let i = 0; i < cells.length; i++) cells[i].classList.toggle("vt-now", i === now);
    }
  }

  editorReply(reply) {
    this.editorMsg.textContent = reply.type === "error" ? `error [${reply.error.code}] ${reply.error.message}` : "";
  }

  // ----- command shell

  commandKey(e) {
    const hist = this.client.history;
    if (e.key === "Enter") {
      e.preventDefault();
      const text = this.cmd.value.trim();
      if (!text) return;
      this.cmd.value = "";
      this.historyPos = null;
      this.client.runText(text);
    } else if (e.key === "ArrowUp") {
      if (!hist.length) return;
      e.preventDefault();
      if (this.historyPos === null) {
        this.draft = this.cmd.value;
        this.historyPos = hist.length;
      }
      this.historyPos = Math.max(0, this.historyPos - 1);
      this.cmd.value = hist[this.historyPos];
    } else if (e.key === "ArrowDown") {
      if (this.historyPos === null) return;
      e.preventDefault();
      this.historyPos += 1;
      if (this.historyPos >= hist.length) {
        this.historyPos = null;
        this.cmd.value = this.draft ?? "";
      } else {
        this.cmd.value = hist[this.historyPos];
      }
    }
  }

  renderLog() {
    const rows = this.client.log.map((entry) =>
      h(
        "div",
        { class: `vt-entry vt-${entry.kind}` },
        h("div", { class: "vt-entry-cmd", text: `vt> ${entry.text}` }),
        h(entry.result && entry.result.includes("\n") ? "pre" : "div", {
          class: "vt-entry-result",
          "data-vt-result": entry.kind,
          text: entry.result ?? "…",
        }),
      ),
    );
    this.log.replaceChildren(...rows);
    this.log.hidden = rows.length === 0;
    this.log.scrollTop = this.log.scrollHeight; // a new result is what the user looks for
  }

  // ----- code shell

  setMode(mode) {
    this.mode = mode;
    const editing = mode === "edit";
    this.script.readOnly = !editing;
    this.root.dataset.vtScriptMode = mode;
    this.editBtn.hidden = editing;
    this.applyBtn.hidden = !editing;
    this.cancelBtn.hidden = !editing;
    this.codeMsg.textContent = editing ? "Editing: changes from elsewhere will not replace your text. Apply runs it (Ctrl+Enter), Cancel returns to the live view (Esc)." : "";
    if (editing) {
      this.editBase = this.client.script?.version ?? null;
      this.script.focus();
    }
    this.renderScript();
  }

  renderScript() {
    const s = this.client.script;
    if (this.mode === "view") {
      this.modeLabel.textContent = s ? `live · v${s.version}` : "live";
      if (s && this.appliedAt != null && s.version > this.appliedAt) {
        this.codeMsg.textContent = "";
        this.appliedAt = null;
      }
      if (s && this.script.value !== s.text) this.script.value = s.text;
      this.script.dataset.vtVersion = s ? String(s.version) : "";
    } else {
      const newer = s && this.editBase !== null && s.version !== this.editBase;
      this.modeLabel.textContent = newer ? `editing · kernel now at v${s.version}` : "editing";
    }
  }

  applyScript() {
    const text = this.script.value;
    this.applyBtn.disabled = true;
    this.codeMsg.textContent = "Applying…";
    this.client.request({ type: "run_script", text }, (reply) => {
      this.applyBtn.disabled = false;
      if (reply.type === "ack") {
        this.setMode("view");
        this.codeMsg.textContent = reply.output ? reply.output : `Applied (v${reply.version}).`;
        this.appliedAt = reply.version;
      } else {
        this.codeMsg.textContent = `error [${reply.error.code}] ${reply.error.message}`;
      }
    });
  }
}

function touchedParams(ops) {
  // "lfo1" for module-level ops, "lfo1.rate" for a param, nothing for clock/connections.
  const out = new Set();
  for (const op of ops || []) {
    const parts = op.path.split("/").slice(1);
    if (parts[0] !== "modules") continue;
    if (parts.length <= 1) return null; // the whole module map: everything
    if (parts.length >= 4 && parts[2] === "params") out.add(`${parts[1]}.${parts[3]}`);
    else out.add(parts[1]);
  }
  return out;
}

function guessSpec(value) {
  if (typeof value === "number") return { kind: "float" };
  if (typeof value === "boolean") return { kind: "bool" };
  if (Array.isArray(value)) return { kind: "steps" };
  return { kind: "string" };
}

// ---------------------------------------------------------------- anywidget entry points

export default {
  initialize({ model }) {
    const key = model.get("panel_id");
    const client = new VtClient(model);
    clients.set(key, client);
    return () => {
      client.dispose();
      if (clients.get(key) === client) clients.delete(key);
    };
  },
  render({ model, el }) {
    const client = clients.get(model.get("panel_id"));
    if (!client) {
      el.textContent = "vtkernel panel: not connected";
      return undefined;
    }
    const view = new PanelView(client, el, model);
    return () => view.dispose();
  },
};
