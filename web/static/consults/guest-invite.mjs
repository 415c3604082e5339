/*
 * <section data-module="guest-invite" data-consult-id>: a doctor invites a guest (the patient at
 * home, a relative, an interpreter) into the call: POST /api/v1/consults/{id}/guests with a
 * label, then shows the one-time link to hand over (with Copy) and when it expires.
 */
import { fetchJson } from "../core/fetch.mjs";

export default class GuestInvite {
  static moduleName = "guest-invite";

  constructor(root) {
    const form = root.querySelector("form");
    const result = root.querySelector("[data-guest-result]");
    const link = root.querySelector("[data-guest-link]");
    const until = root.querySelector("[data-guest-until]");
    const error = root.querySelector("[data-guest-error]");
    const copy = root.querySelector("[data-guest-copy]");
    for (const control of form.querySelectorAll("input, button")) {
      control.disabled = false;
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const label = form.elements.label.value.trim();
      let invitation;
      try {
        invitation = await fetchJson(`/api/v1/consults/${root.dataset.consultId}/guests`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(label ? { label } : {}),
        });
      } catch (failure) {
        error.textContent = `No link was made: ${failure.message}`;
        error.hidden = false;
        return;
      }
      link.textContent = invitation.url;
      until.textContent = new Date(invitation.expires_at).toISOString().slice(0, 16).replace("T", " ");
      result.hidden = false;
      copy.textContent = "Copy";
      form.reset();
    });
    copy.addEventListener("click", () => {
      navigator.clipboard?.writeText(link.textContent.trim()).then(() => {
        copy.textContent = "Copied";
      });
    });
  }
}
