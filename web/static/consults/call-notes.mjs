/*
 * <section data-module="call-notes" data-consult-id>: the specialist writes advice, a
 * prescription suggestion or a referral (up to the hospital, down to the clinic) into the
 * consult record: POST /api/v1/consults/{id}/note {"text", "kind"}.
 */
import { fetchJson } from "../core/fetch.mjs";

export default class CallNotes {
  static moduleName = "call-notes";

  constructor(root) {
    const form = root.querySelector("form");
    const error = root.querySelector("[data-notes-error]");
    const added = root.querySelector("[data-notes-added]");
    for (const control of form.querySelectorAll("select, textarea, button")) {
      control.disabled = false;
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const text = form.elements.text.value.trim();
      const kind = form.elements.kind.value;
      if (!text) {
        error.textContent = "Write the advice, prescription or referral first.";
        error.hidden = false;
        form.elements.text.focus();
        return;
      }
      try {
        await fetchJson(`/api/v1/consults/${root.dataset.consultId}/note`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ text, kind }),
        });
      } catch (failure) {
        error.textContent = `It was not added: ${failure.message}`;
        error.hidden = false;
        return;
      }
      const item = document.createElement("li");
      item.className = "call-note";
      const label = document.createElement("strong");
      label.textContent = form.elements.kind.selectedOptions[0].textContent;
      const body = document.createElement("p");
      body.textContent = text;
      item.append(label, " (added to the record)", body);
      added.append(item);
      form.elements.text.value = "";
    });
  }
}
