/*
 * <section data-module="call-recording" data-consult-id data-role>: a doctor's consent to
 * recording the call (the GP ticks the patient's consent first), its withdrawal, and where
 * the recording stands (polled every 5 s, and whenever the call's people change: the
 * recorder joins the room as a peer with the role "recorder").
 */
import { consent, state } from "./recording.mjs";

const POLL_MS = 5000;

export default class CallRecording {
  static moduleName = "call-recording";

  #root;
  #id;
  #role;
  #form;
  #give;
  #withdraw;
  #patient;
  #text;
  #error;

  constructor(root) {
    this.#root = root;
    this.#id = root.dataset.consultId;
    this.#role = root.dataset.role;
    this.#form = root.querySelector("[data-recording-form]");
    this.#give = root.querySelector("[data-recording-give]");
    this.#withdraw = root.querySelector("[data-recording-withdraw]");
    this.#patient = root.querySelector("#call-patient-consent");
    this.#text = root.querySelector("[data-recording-state]");
    this.#error = root.querySelector("[data-recording-error]");
    if (this.#patient) {
      this.#patient.disabled = false;
      this.#patient.addEventListener("change", () => this.#enable());
    }
    this.#enable();
    this.#form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#send({ consent: true, ...(this.#patient ? { patientConsent: true } : {}) });
    });
    this.#withdraw.addEventListener("click", () => this.#send({ consent: false }));
    root.closest("[data-module='consult-call']")?.addEventListener("doorstep:call-peers", () => this.refresh());
    window.setInterval(() => this.refresh(), POLL_MS);
    this.refresh();
  }

  #enable() {
    this.#give.disabled = Boolean(this.#patient) && !this.#patient.checked;
  }

  async #send(options) {
    this.#error.hidden = true;
    try {
      this.#show(await consent(this.#id, options));
    } catch (error) {
      this.#error.textContent = error.message;
      this.#error.hidden = false;
    }
  }

  async refresh() {
    try {
      this.#show(await state(this.#id));
    } catch {
      // the call goes on; the next poll tries again
    }
  }

  #show(now) {
    const mine = this.#role === "host" ? now.specialist_consent : now.gp_consent;
    const theirs = this.#role === "host" ? now.gp_consent : now.specialist_consent;
    this.#root.dataset.recording = now.recording ? "yes" : "no";
    let words;
    if (now.recording) {
      words = "This call is being recorded. Either doctor can stop it.";
    } else if (now.stopped_at) {
      words = `The recording stopped (${now.stop_reason || "stopped"}). It is kept with the consult.`;
    } else if (mine && theirs) {
      words = "Both doctors agreed: the recording starts as soon as you are both in the call.";
    } else if (mine) {
      words = "You agreed. The recording starts when the other doctor agrees too.";
    } else if (theirs) {
      words = `The other doctor agreed to record this call${this.#patient ? " (tick the patient's consent first)" : ""}.`;
    } else {
      words = `The call is recorded only if both doctors agree${this.#patient ? ", and the patient" : ""}.`;
    }
    this.#text.textContent = words;
    const given = Boolean(mine) && !now.stopped_at;
    this.#give.hidden = given || Boolean(now.stopped_at);
    this.#withdraw.hidden = !given;
    if (this.#patient) {
      this.#patient.closest("div").hidden = given || Boolean(now.stopped_at);
    }
  }
}
