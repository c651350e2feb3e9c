// The protocol-v1 client: one per widget model, shared by every view of it in this window.
//
// It keeps the mirror: snapshot, then deltas applied by base/version, resync on a gap.
// Commands carry ids unique to this window, so acks are matched to whoever sent them.
// Views subscribe to it (`subscribe(fn)`: fn(kind, detail)) and never own state.

import { applyPatch } from "./patch.js";

const HELLO = { protocol: 1, shell: "editor", telemetry: true, script: true };
const COMM_TARGET = "vtkernel.state";
const PIANOROLL_CYCLES = 4; // cycles a pianoroll shows: a page, turned when the playhead leaves it
const HELLO_RETRY_MS = 2000;
const RESYNC_RETRY_MS = 2000;
const LOG_LIMIT = 200;
const HISTORY_LIMIT = 500;

const windowTag = Math.random().toString(36).slice(2, 8);

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

export class VtClient {
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
      case "report":
        // A watched file's error, a session or timing problem, a module plugin: the kernel says
        // it to every client, and the command shell's log shows it where commands are answered.
        this.pushLog({
          text: null,
          source: String(msg.source ?? "kernel"),
          result: String(msg.text ?? ""),
          kind: msg.error ? "error" : "report",
        });
        this.emit("log");
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

  pushLog(entry) {
    this.log.push(entry);
    if (this.log.length > LOG_LIMIT) this.log.splice(0, this.log.length - LOG_LIMIT);
  }

  runText(text) {
    const entry = { text, result: null, kind: "pending" };
    this.pushLog(entry);
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
