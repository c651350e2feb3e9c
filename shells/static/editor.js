// The editor shell: the clock, one box per module (a control per param, a pianoroll for sources),
// the connections, and forms to add modules and connections. Every edit is a protocol command.

import { NumberControl, guessSpec, makeControl } from "./controls.js";
import { h, nextId } from "./dom.js";
import { ensurePianoroll, movePlayhead } from "./pictures.js";

export class Editor {
  constructor(client) {
    this.client = client;
    this.modules = new Map(); // name -> {type, fieldset, grid, controls: Map(param -> Control), roll}
    this.connKey = null;
    this.portsKey = null;
    const c = client;
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
    // Ableton Link (SPEC §10): the document says whether we are in a session, telemetry how many peers.
    this.link = h("button", {
      type: "button",
      class: "vt-button vt-link",
      "data-vt-link": "",
      "aria-pressed": "false",
      text: "Link",
      onclick: () => c.command({ op: "set_link", link: !c.doc?.clock?.link }, (r) => this.editorReply(r)),
    });
    this.peers = h("span", { class: "vt-peers", "data-vt-peers": "", "aria-live": "polite" });
    const clock = h(
      "div",
      { class: "vt-clock", role: "group", "aria-label": "Clock" },
      this.bpm.labelEl,
      this.bpm.number,
      this.transport,
      this.beat,
      this.link,
      this.peers,
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
    this.el = h(
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
  }

  /** Rebuild from scratch (a new schema: every control may have changed). */
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
    this.renderTelemetry();
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
      ensurePianoroll(this.client, entry, name, modules[name]);
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
    const linked = !!doc.clock?.link;
    this.link.setAttribute("aria-pressed", String(linked));
    this.link.setAttribute("aria-label", linked ? "Leave the Ableton Link session" : "Join an Ableton Link session");
    this.link.title = linked ? "In an Ableton Link session: tempo and phase follow the session" : "Join an Ableton Link session";
    this.renderPeers();
    this.renderConnections(doc);
    this.renderPorts(doc);
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
      const control = makeControl(this, name, param, spec);
      control.describe();
      entry.controls.set(param, control);
      const row = h("div", { class: `vt-param vt-kind-${spec.kind}` }, control.elements(), control.error);
      entry.grid.append(row);
      if (control.viz) entry.grid.append(h("div", { class: "vt-param vt-steps-row" }, h("span"), control.viz));
      control.sync(true);
    }
  }

  /** A source module without a step strip of its own gets a pianoroll of its next cycles. */

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

  /** In a Link session: how many peers (telemetry's `link.peers`), or "joining…" until it says. */
  renderPeers() {
    const peers = this.client.telemetry?.link?.peers;
    const linked = !!this.client.doc?.clock?.link;
    const known = linked && typeof peers === "number";
    this.peers.textContent = !linked ? "" : known ? `${peers} ${peers === 1 ? "peer" : "peers"}` : "joining…";
    this.peers.dataset.vtPeers = known ? String(peers) : "";
  }

  renderTelemetry() {
    const t = this.client.telemetry;
    const beat = t && typeof t.beat === "number" ? t.beat : null;
    this.beat.textContent = beat === null ? "beat —" : `beat ${beat.toFixed(2)}`;
    this.renderPeers();
    // The step each sequencer is playing: a pure function of the beat (patterns keep their phase).
    const modules = this.client.doc?.modules || {};
    for (const [name, entry] of this.modules) {
      if (entry.roll) movePlayhead(this.client, entry, name);
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
