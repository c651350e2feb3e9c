// The code shell: the live script that rebuilds the document (VIEW mode, follows every change),
// or the user's edit of it (EDIT mode, never replaced by changes from elsewhere; Apply runs it).

import { h, nextId } from "./dom.js";

export class CodeShell {
  /** `root` is the panel's element: it carries `data-vt-script-mode`. */
  constructor(client, root) {
    this.client = client;
    this.root = root;
    this.mode = "view";
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
    this.el = h(
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
  }

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
