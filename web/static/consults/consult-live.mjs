/*
 * <div data-module="consult-live" [data-consult-id]>: keeps a consults page current without a
 * reload. On every (re)connect of the events WebSocket, on each consult.* event (of this consult
 * when data-consult-id is given) and when a countdown runs out, it fetches the page again and
 * swaps in its [data-live-region]: the server renders the words, so the page and its live
 * updates never disagree. Accept and Decline go through the API; without script they are forms.
 */
import { ApiError, apiFetch, fetchJson } from "../core/fetch.mjs";
import { EventStream } from "../reading/events.mjs";
import { tickCountdowns } from "./countdown.mjs";

const REFRESH_DELAY_MS = 150;
const TICK_MS = 1000;

export default class ConsultLive {
  static moduleName = "consult-live";

  #root;
  #id;
  #region;
  #say;
  #connection;
  #timer = 0;

  constructor(root) {
    this.#root = root;
    this.#id = root.dataset.consultId || "";
    this.#region = root.querySelector("[data-live-region]");
    this.#say = root.querySelector("[data-live-say]");
    this.#connection = root.querySelector("[data-live-connection]");
    root.addEventListener("submit", (event) => this.#submit(event));
    document.addEventListener("doorstep:consult-answered", () => this.#soon());
    new EventStream({
      onOpen: () => {
        this.#connection.textContent = "Live: this page updates by itself.";
        this.refresh();
      },
      onClose: (seconds) => {
        this.#connection.textContent = `Live updates are interrupted; trying again in ${seconds} s.`;
      },
      onEvent: (channel, event) => this.#event(event),
    }).start();
    tickCountdowns(this.#region);
    window.setInterval(() => {
      if (tickCountdowns(this.#region)) {
        window.setTimeout(() => this.refresh(), TICK_MS);
      }
    }, TICK_MS);
  }

  #event(event) {
    if (!event || typeof event.type !== "string" || !event.type.startsWith("consult.")) {
      return;
    }
    if (this.#id && String(event.consult && event.consult.id) !== this.#id) {
      return;
    }
    this.#soon();
  }

  #soon() {
    window.clearTimeout(this.#timer);
    this.#timer = window.setTimeout(() => this.refresh(), REFRESH_DELAY_MS);
  }

  /** Fetch this page again and show its live region (announcing a changed headline). */
  async refresh() {
    let html;
    try {
      const response = await apiFetch(window.location.pathname + window.location.search, {
        headers: { Accept: "text/html" },
      });
      if (!response.ok) {
        throw new ApiError(response.status, null);
      }
      html = await response.text();
    } catch (error) {
      this.#connection.textContent = `This page could not be refreshed: ${error.message}`;
      return;
    }
    const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live-region]");
    if (!fresh) {
      return;
    }
    const before = this.#headline();
    this.#region.replaceChildren(...fresh.childNodes);
    tickCountdowns(this.#region);
    const after = this.#headline();
    if (after && after !== before) {
      this.#say.textContent = after;
    }
    this.#root.dataset.liveSynced = String(Date.now());
  }

  #headline() {
    return (this.#region.querySelector("[data-consult-headline]")?.textContent || "").trim();
  }

  async #submit(event) {
    const form = event.target.closest("form[data-consult-action]");
    if (!form || !this.#region.contains(form)) {
      return;
    }
    event.preventDefault();
    const action = form.dataset.consultAction;
    const id = form.closest("[data-consult-id]").dataset.consultId;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await fetchJson(`/api/v1/consults/${encodeURIComponent(id)}/${action}`, { method: "POST" });
      this.#say.textContent = action === "accept" ? `You accepted consult ${id}.` : `You declined consult ${id}.`;
      document.dispatchEvent(new CustomEvent("doorstep:consult-answered", { detail: { id: Number(id), action } }));
    } catch (error) {
      this.#say.textContent = error instanceof ApiError ? error.message : "That did not work; try again.";
      button.disabled = false;
    }
    this.#soon();
  }
}
