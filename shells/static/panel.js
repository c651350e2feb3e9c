// vtkernel panel: a protocol-v1 client in the browser (SPEC §4, §5), an anywidget front end.
//
// The parts, one module each. shells/panel.py joins them, in the order of shells.panel.MODULES,
// into the one ES module anywidget loads, so there is no build step:
//   patch.js          RFC 6902, for the mirror
//   client.js         the protocol client (VtClient) and its transports; one per widget model
//   dom.js            DOM helpers
//   controls.js       one control per value (number, enum, bool, text, steps, pattern)
//   pictures.js       the pianoroll of a source module, drawn by the kernel
//   editor.js         the editor shell (clock, modules, connections)
//   command_shell.js  the command shell
//   code_shell.js     the code shell
//   panel.js          this file: one view of the three shells, and anywidget's entry points
// Test hooks (SPEC §4): [data-vt-param="MODULE.PARAM"], [data-vt-command], [data-vt-script];
// the root carries data-vt-version, data-vt-status and data-vt-script-mode.

import { VtClient } from "./client.js";
import { CodeShell } from "./code_shell.js";
import { CommandShell } from "./command_shell.js";
import { h } from "./dom.js";
import { Editor } from "./editor.js";
import { drawPianoroll } from "./pictures.js";

const clients = new Map(); // panel_id -> VtClient

/** One view of a panel: its three shells over the client it shares with the other views. */
class PanelView {
  constructor(client, el, model) {
    this.client = client;
    this.status = h("span", { class: "vt-status", role: "status", "aria-live": "polite" });
    this.notice = h("div", { class: "vt-notice", role: "alert" });
    this.root = h("div", {
      class: "vt-panel",
      role: "region",
      "aria-label": "vtkernel panel",
      "data-vt-panel": "",
      "data-lm-suppress-shortcuts": "true",
    });
    this.editor = new Editor(client);
    this.commandShell = new CommandShell(client);
    this.codeShell = new CodeShell(client, this.root);
    this.root.append(
      h("div", { class: "vt-bar" }, h("strong", { class: "vt-title", text: model.get("title") || "vtkernel" }), this.status),
      this.notice,
      h("div", { class: "vt-body" }, this.editor.el, h("div", { class: "vt-side" }, this.commandShell.el, this.codeShell.el)),
    );
    // Keys typed into the panel are the panel's: keep notebook shortcuts (a, b, dd...) out of them.
    this.root.addEventListener("keydown", (e) => {
      const t = e.target;
      if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement) {
        if (!(e.key === "Enter" && e.shiftKey)) e.stopPropagation();
      }
    });
    el.replaceChildren(this.root);
    this.codeShell.setMode("view");
    this.unsubscribe = client.subscribe((kind, detail) => this.update(kind, detail));
    this.renderAll();
  }

  dispose() {
    this.unsubscribe();
    this.commandShell.dispose();
  }

  update(kind, detail) {
    if (kind === "doc") this.renderDoc(detail);
    else if (kind === "schema") this.renderAll();
    else if (kind === "script") this.codeShell.renderScript();
    else if (kind === "telemetry") this.editor.renderTelemetry();
    else if (kind === "haps") drawPianoroll(this.client, this.editor.modules.get(detail), detail);
    else if (kind === "log") this.commandShell.renderLog();
    else if (kind === "status") this.renderStatus();
    else if (kind === "notice") this.notice.textContent = detail;
  }

  renderAll() {
    this.editor.renderAll();
    this.codeShell.renderScript();
    this.commandShell.renderLog();
    this.showVersion();
    this.notice.textContent = this.client.notice;
  }

  renderDoc(detail) {
    this.editor.renderDoc(detail);
    this.showVersion();
  }

  showVersion() {
    if (this.client.doc) this.root.dataset.vtVersion = String(this.client.version);
    this.renderStatus();
  }

  renderStatus() {
    const c = this.client;
    const v = c.version === null ? "" : `v${c.version} · `;
    this.status.textContent = `${v}${c.status}`;
    this.root.dataset.vtStatus = c.status;
  }
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
