// The command shell: a command-language line (Enter runs it, the same parser as `%vt`),
// ↑/↓ history, and one result line per command. Its log and history live in the client,
// so every view of the panel shows the same.

import { h, nextId } from "./dom.js";

export class CommandShell {
  constructor(client) {
    this.client = client;
    this.historyPos = null;
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
    this.el = h(
      "section",
      { class: "vt-command-shell", "aria-label": "Command shell" },
      this.log,
      h("div", { class: "vt-prompt" }, h("label", { for: cmdId, class: "vt-prompt-label", text: "vt>" }), this.cmd),
    );
  }

  dispose() {
    this.resizeObserver.disconnect();
  }

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
        { class: `vt-entry vt-${entry.kind}`, "data-vt-source": entry.source ?? null },
        // a command shows what was typed; a report from the kernel, where it came from
        h("div", { class: "vt-entry-cmd", text: entry.text == null ? `${entry.source}:` : `vt> ${entry.text}` }),
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
}
