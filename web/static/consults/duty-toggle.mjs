/*
 * <form data-module="duty-toggle" data-on-duty="true|false|">: the specialist's on-duty toggle
 * (PUT /api/v1/duty). Without script the same form posts to /duty. An empty data-on-duty (the
 * top bar's toggle, on pages that do not know the state) fetches it first. Every toggle on the
 * page follows a change made by any of them (the "doorstep:duty" event).
 */
import { ApiError, fetchJson } from "../core/fetch.mjs";

const WORDS = {
  true: "You are on duty: consult requests reach you.",
  false: "You are off duty: consult requests for your specialties go to others.",
};

export default class DutyToggle {
  static moduleName = "duty-toggle";

  #root;
  #button;
  #value;
  #state;
  #onDuty = false;

  constructor(root) {
    this.#root = root;
    this.#button = root.querySelector("[data-duty-button]");
    this.#value = root.querySelector("[data-duty-value]");
    this.#state = root.querySelector("[data-duty-state]");
    root.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#toggle();
    });
    document.addEventListener("doorstep:duty", (event) => this.#show(event.detail.onDuty));
    if (root.dataset.onDuty === "true" || root.dataset.onDuty === "false") {
      this.#show(root.dataset.onDuty === "true");
    } else {
      this.#load();
    }
  }

  async #load() {
    try {
      const found = await fetchJson("/api/v1/duty");
      this.#show(found.on_duty);
      this.#button.hidden = false;
    } catch {
      // The top bar stays without the toggle; the home page has it.
    }
  }

  async #toggle() {
    const wanted = !this.#onDuty;
    this.#button.disabled = true;
    try {
      const found = await fetchJson("/api/v1/duty", {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ on_duty: wanted }),
      });
      document.dispatchEvent(new CustomEvent("doorstep:duty", { detail: { onDuty: found.on_duty } }));
    } catch (error) {
      if (this.#state) {
        this.#state.textContent = `Your duty did not change: ${
          error instanceof ApiError ? error.message : "the connection failed"
        }`;
      }
    } finally {
      this.#button.disabled = false;
    }
  }

  #show(onDuty) {
    this.#onDuty = Boolean(onDuty);
    this.#root.dataset.onDuty = String(this.#onDuty);
    this.#button.setAttribute("aria-pressed", String(this.#onDuty));
    this.#value.value = this.#onDuty ? "no" : "yes";
    if (this.#state) {
      this.#state.textContent = WORDS[this.#onDuty];
    }
  }
}
