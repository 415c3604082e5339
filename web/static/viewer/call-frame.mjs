/*
 * The framed side of shared viewing in a call: a viewer page opened with ?call=<consult id>
 * inside the call page's frame. It posts the viewer's state to the call page on each change
 * (at most 20 a second) and applies the states the call page posts in; while someone else
 * leads, the viewer's own input is inert (the call page says who is showing). Messages go to,
 * and are taken from, the parent window of this origin only.
 *
 * A viewer hands in `get()` (its state: {study, series, kind, image | ecg}), `apply(state)`
 * (true once shown; false to be tried again at the next change, e.g. while a frame loads) and
 * optionally `switchSeries(uid)` (true when it switched in place); it calls `changed()`
 * whenever what it shows changes.
 */
const SEND_MS = 50; // at most 20 states a second
const MESSAGE = "doorstep:shared-view";

export class CallFrame {
  #get;
  #apply;
  #switchSeries;
  #inert;
  #call;
  #pending = null;
  #applying = false;
  #timer = 0;
  #sentAt = 0;
  #last = "";
  #following = false;

  constructor({ call, get, apply, switchSeries = () => false, inert = () => [] }) {
    this.#call = call;
    this.#get = get;
    this.#apply = apply;
    this.#switchSeries = switchSeries;
    this.#inert = inert;
    window.addEventListener("message", (event) => this.#receive(event));
    // Keys reach the viewer through the document: while following, they stop here (but Tab,
    // so that the keyboard can still leave the frame).
    window.addEventListener("keydown", (event) => this.#block(event), true);
    this.#post({ type: "ready", state: this.#get() });
  }

  /** The viewer shows something new: a state for the call page soon, a pending state applied. */
  changed() {
    if (this.#applying) {
      return;
    }
    if (this.#pending) {
      this.#tryApply();
    }
    this.#schedule();
  }

  #schedule() {
    if (!this.#timer) {
      const wait = Math.max(0, this.#sentAt + SEND_MS - Date.now());
      this.#timer = window.setTimeout(() => this.#flush(), wait);
    }
  }

  #flush() {
    this.#timer = 0;
    const state = this.#get();
    const text = JSON.stringify(state);
    if (text === this.#last) {
      return;
    }
    this.#last = text;
    this.#sentAt = Date.now();
    this.#post({ type: "state", state });
  }

  #post(message) {
    if (window.parent !== window) {
      window.parent.postMessage({ [MESSAGE]: message }, window.location.origin);
    }
  }

  #receive(event) {
    if (event.origin !== window.location.origin || event.source !== window.parent) {
      return;
    }
    const message = event.data?.[MESSAGE];
    if (!message || typeof message !== "object") {
      return;
    }
    if (message.type === "apply" && message.state && typeof message.state === "object") {
      this.#show(message.state);
    } else if (message.type === "follow") {
      this.#follow(Boolean(message.following));
    }
  }

  #show(state) {
    const mine = this.#get();
    if (state.study !== mine.study) {
      return; // the call page opens another study in the frame itself
    }
    if (state.series && state.series !== mine.series && !this.#switchSeries(state.series)) {
      const url = new URL(window.location.href);
      url.searchParams.set("series", state.series);
      url.searchParams.set("call", this.#call);
      window.location.replace(url.href); // a series the viewer cannot switch to in place
      return;
    }
    this.#pending = state;
    this.#tryApply();
    this.#schedule();
  }

  #tryApply() {
    this.#applying = true;
    try {
      if (this.#apply(this.#pending)) {
        this.#pending = null;
      }
    } finally {
      this.#applying = false;
    }
  }

  #follow(following) {
    this.#following = following;
    document.body.dataset.following = following ? "yes" : "no";
    for (const element of this.#inert()) {
      element.inert = following;
    }
    if (!following) {
      this.#last = ""; // the lead's first state goes out whole
      this.changed();
    }
  }

  #block(event) {
    if (this.#following && event.key !== "Tab") {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }
}
