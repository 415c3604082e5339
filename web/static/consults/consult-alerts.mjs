/*
 * <div data-module="consult-alerts" data-me data-channel="user:{id}">, on every specialist page:
 * a consult offered to me (consult.offered on my own channel) shows a prominent banner at the
 * top of the page with the patient, clinic and reason and Accept / Decline, beeps (once a user
 * gesture has allowed sound) and puts "(1) Consult request — Doorstep" in the tab's title until
 * it is answered; consult.withdrawn (lapsed, or the GP withdrew it) takes it away. On every
 * (re)connect the offers are fetched again (GET /api/v1/consults), so that a reload or a lost
 * connection shows what is still waiting. A follow-up booked at a kiosk is announced 10 minutes
 * before it starts (follow_up.reminder on my channel): a banner until dismissed.
 */
import { ApiError, fetchJson } from "../core/fetch.mjs";
import { csrfToken } from "../core/csrf.mjs";
import { EventStream } from "../reading/events.mjs";
import { element, personName, when } from "../reading/words.mjs";
import { Beeper } from "./beep.mjs";
import { tickCountdowns } from "./countdown.mjs";

const TICK_MS = 1000;

export function alertTitle(count, original) {
  if (!count) {
    return original;
  }
  return `(${count}) Consult request${count === 1 ? "" : "s"} — Doorstep`;
}

export default class ConsultAlerts {
  static moduleName = "consult-alerts";

  #me;
  #channel;
  #box;
  #say;
  #title;
  #beeper;
  #offers = new Map();

  constructor(root) {
    this.#me = root.dataset.me || "";
    this.#channel = root.dataset.channel || "";
    this.#title = document.title;
    this.#beeper = new Beeper();
    this.#say = element("p", { class: "visually-hidden", "aria-live": "polite", "data-alerts-say": "" });
    this.#box = element("section", { class: "consult-alerts", "aria-label": "Consult requests", "data-consult-alerts": "" });
    this.#box.hidden = true;
    const main = document.getElementById("main") || document.body;
    main.prepend(this.#box, this.#say);
    this.#box.addEventListener("submit", (event) => this.#submit(event));
    document.addEventListener("doorstep:consult-answered", (event) => this.#answered(event.detail.id));
    new EventStream({
      onOpen: () => this.#sync(),
      onEvent: (channel, event) => this.#event(channel, event),
    }).start();
    window.setInterval(() => {
      if (tickCountdowns(this.#box)) {
        window.setTimeout(() => this.#sync(), 2 * TICK_MS);
      }
    }, TICK_MS);
    root.dataset.alertsReady = "";
  }

  #event(channel, event) {
    if (channel === this.#channel && event && event.type === "follow_up.reminder" && event.follow_up) {
      this.#remind(event.follow_up);
      return;
    }
    if (channel !== this.#channel || !event || !event.consult) {
      return;
    }
    if (event.type === "consult.offered" && event.consult.specialist === this.#me) {
      this.#add(event.consult, true);
    } else if (event.type === "consult.withdrawn" || event.type === "consult.ended") {
      const known = this.#offers.get(event.consult.id);
      if (known) {
        this.#remove(event.consult.id);
        this.#say.textContent = `The consult request on ${personName(known.patient_name)} was withdrawn.`;
      }
    }
  }

  /** What is offered to me now, from the API (events are not durable). */
  async #sync() {
    let all;
    try {
      all = await fetchJson("/api/v1/consults");
    } catch {
      return;
    }
    const open = all.filter((c) => c.status === "requested" && c.specialist === this.#me);
    const ids = new Set(open.map((c) => c.id));
    for (const id of [...this.#offers.keys()]) {
      if (!ids.has(id)) {
        this.#remove(id);
      }
    }
    for (const consult of open) {
      this.#add(consult, false);
    }
  }

  #add(consult, announce) {
    const known = this.#offers.has(consult.id);
    const banner = this.#banner(consult);
    const old = this.#box.querySelector(`[data-consult-alert="${consult.id}"]`);
    if (old) {
      old.replaceWith(banner);
    } else {
      this.#box.append(banner);
    }
    this.#offers.set(consult.id, consult);
    this.#box.hidden = false;
    tickCountdowns(this.#box);
    this.#showCount();
    if (announce && !known && this.#beeper.beep()) {
      this.#box.dataset.beeps = String(Number(this.#box.dataset.beeps || 0) + 1);
    }
  }

  #banner(consult) {
    const id = String(consult.id);
    const patient = personName(consult.patient_name);
    const about = [consult.clinic, `asked by ${consult.requested_by}`];
    const details = element("p", {}, about.join(" · "));
    if (consult.scheduled_at) {
      details.append(" · for ", when(consult.scheduled_at));
    }
    const banner = element(
      "div",
      { class: "consult-alert", role: "alert", "data-consult-alert": id },
      element("h2", {}, `Consult request: ${patient}`),
      details,
      element("p", {}, element("strong", {}, "Reason: "), consult.reason || "No reason given."),
    );
    if (consult.offered_until) {
      banner.append(
        element("p", { class: "consult-alert-time", "data-countdown": "", "data-until": consult.offered_until }, ""),
      );
    }
    banner.append(
      element(
        "div",
        { class: "actions" },
        this.#form(id, "accept", "Accept", "button-primary", patient),
        this.#form(id, "decline", "Decline", "button-secondary", patient),
      ),
    );
    return banner;
  }

  #form(id, action, label, style, patient) {
    return element(
      "form",
      { method: "post", action: `/consults/${id}/${action}`, class: "inline", "data-alert-action": action },
      element("input", { type: "hidden", name: "csrf_token", value: csrfToken() }),
      element(
        "button",
        { type: "submit", class: `button ${style}` },
        label,
        element("span", { class: "visually-hidden" }, ` the consult on ${patient}`),
      ),
    );
  }

  async #submit(event) {
    const form = event.target.closest("form[data-alert-action]");
    if (!form) {
      return;
    }
    event.preventDefault();
    const banner = form.closest("[data-consult-alert]");
    const id = Number(banner.dataset.consultAlert);
    const action = form.dataset.alertAction;
    for (const button of banner.querySelectorAll("button")) {
      button.disabled = true;
    }
    try {
      await fetchJson(`/api/v1/consults/${id}/${action}`, { method: "POST" });
    } catch (error) {
      this.#remove(id);
      this.#say.textContent =
        error instanceof ApiError && error.status === 409
          ? "That request is no longer offered to you."
          : "That did not work; try again from the Consults page.";
      return;
    }
    const consult = this.#offers.get(id);
    this.#offers.delete(id);
    this.#showCount();
    document.dispatchEvent(new CustomEvent("doorstep:consult-answered", { detail: { id, action } }));
    if (action === "accept") {
      const done = element(
        "div",
        { class: "consult-alert consult-alert-done", role: "status", "data-consult-alert": String(id), "data-accepted": "" },
        element("h2", {}, `You accepted the consult on ${personName(consult && consult.patient_name)}`),
        element("p", {}, element("a", { class: "button button-primary", href: `/consults/${id}` }, "Join the call")),
      );
      banner.replaceWith(done);
      done.querySelector("a").focus();
    } else {
      banner.remove();
      this.#box.hidden = this.#box.childElementCount === 0;
      this.#say.textContent = "You declined the consult request.";
    }
  }

  /** A follow-up booked at a kiosk starts in 10 minutes (server/kiosk/lifetime.py). */
  #remind(followUp) {
    const id = String(followUp.id);
    this.#box.querySelector(`[data-follow-up-reminder="${id}"]`)?.remove();
    const where = followUp.where === "home" ? "by video from home" : "at the kiosk";
    const banner = element(
      "div",
      { class: "consult-alert consult-alert-done", role: "status", "data-follow-up-reminder": id },
      element("h2", {}, "Booked follow-up soon"),
      element("p", {}, "At ", when(followUp.start), ` · ${followUp.specialty} · ${where}, booked at ${followUp.corner || "a corner"}.`),
      element("p", {}, "The request comes to you when the person joins."),
      element(
        "div",
        { class: "actions" },
        element("button", { type: "button", class: "button button-secondary", "data-dismiss-reminder": "" }, "Dismiss"),
      ),
    );
    banner.querySelector("[data-dismiss-reminder]").addEventListener("click", () => {
      banner.remove();
      this.#box.hidden = this.#box.childElementCount === 0;
    });
    this.#box.append(banner);
    this.#box.hidden = false;
    this.#say.textContent = "A booked follow-up starts in about 10 minutes.";
    this.#beeper.beep();
  }

  /** Answered elsewhere on the page (the consults list): the banner goes. */
  #answered(id) {
    if (this.#offers.has(id)) {
      this.#remove(id);
    }
  }

  #remove(id) {
    this.#offers.delete(id);
    this.#box.querySelector(`[data-consult-alert="${id}"]`)?.remove();
    this.#box.hidden = this.#box.childElementCount === 0;
    this.#showCount();
  }

  #showCount() {
    document.title = alertTitle(this.#offers.size, this.#title);
    this.#box.dataset.pending = String(this.#offers.size);
  }
}
