/*
 * Shared study viewing in a call: the Studies panel of the call page ([data-shared-view]).
 * "Open together" shows an attached study in a frame of the viewer page (/studies/{uid}/view
 * ?call={id}) for everyone in the call; one person leads at a time (the host by default, who
 * can hand the lead to a clinic doctor and take it back) and only the leader's view is sent,
 * as `view` messages on the signaling socket; everyone else's viewer follows, its own input
 * inert. The state's fields are in docs/consults.md ("Shared study viewing").
 *
 * It talks to the call (consult-call.mjs) through events on the call's root only: it hears
 * `doorstep:call-view` (a relayed view message) and `doorstep:call-peers` ({me, peers}) and
 * sends with `doorstep:call-view-send` (detail: the state). The framed viewer talks to it with
 * postMessage, this origin only (web/static/viewer/call-frame.mjs).
 */
const SEND_MS = 50; // at most 20 view messages a second (the socket allows 50)
const MESSAGE = "doorstep:shared-view";
const FIELDS = ["study", "series", "kind", "image", "ecg"];

export class SharedView {
  #root;
  #panel;
  #el = {};
  #consult;
  #me = "";
  #peers = [];
  #control = ""; // the peer id who leads ("" for the host)
  #told = false; // the host has said who leads since I came in
  #state = null; // what is shown together: {study, series, kind, image | ecg}, or null
  #frameStudy = ""; // the study the frame was opened on
  #timer = 0;
  #sentAt = 0;

  constructor(root) {
    this.#root = root;
    this.#panel = root.querySelector("[data-shared-view]");
    if (!this.#panel) {
      return;
    }
    this.#consult = root.dataset.consultId;
    const q = (selector) => this.#panel.querySelector(selector);
    this.#el = {
      opens: [...this.#panel.querySelectorAll("[data-shared-open]")],
      area: q("[data-shared-area]"),
      who: q("[data-shared-who]"),
      hands: q("[data-shared-hands]"),
      take: q("[data-shared-take]"),
      give: q("[data-shared-give]"),
      close: q("[data-shared-close]"),
      frame: q("[data-shared-frame]"),
    };
    for (const button of this.#el.opens) {
      button.addEventListener("click", () => this.#open(button.dataset.sharedOpen));
    }
    this.#el.close.addEventListener("click", () => this.#closeTogether());
    this.#el.take.addEventListener("click", () => this.#lead(this.#me));
    this.#el.give.addEventListener("click", () => this.#lead(this.#host()?.peer || ""));
    root.addEventListener("doorstep:call-peers", (event) => this.#present(event.detail));
    root.addEventListener("doorstep:call-view", (event) => this.#receive(event.detail));
    window.addEventListener("message", (event) => this.#fromFrame(event));
    // The call ended (consult-call.mjs marks its root): nothing is shown together any more.
    new MutationObserver(() => {
      if (root.dataset.ended) {
        this.#present({ me: "", peers: [] });
      }
    }).observe(root, { attributes: true, attributeFilter: ["data-ended"] });
    this.#render();
  }

  // Who leads --------------------------------------------------------------------------

  #host() {
    return this.#peers.find((p) => p.role === "host");
  }

  /** The peer id of the leader: the one named, while present, else the host. */
  #leader() {
    if (this.#control && this.#peers.some((p) => p.peer === this.#control)) {
      return this.#control;
    }
    return this.#host()?.peer || "";
  }

  #leading() {
    return Boolean(this.#me) && this.#leader() === this.#me;
  }

  #amHost() {
    return this.#root.dataset.role === "host";
  }

  #nameOf(peer) {
    return this.#peers.find((p) => p.peer === peer)?.name || "Someone";
  }

  /** The host names the leader (or the leader hands it back to the host). */
  #lead(peer) {
    if (!peer || !this.#me) {
      return;
    }
    this.#control = peer;
    this.#told = true;
    this.#send({ control: peer });
    if (this.#leading() && this.#state) {
      this.#send(this.#message());
    }
    this.#render();
  }

  // The call ---------------------------------------------------------------------------

  #present(detail) {
    const before = new Set(this.#peers.map((p) => p.peer));
    this.#peers = Array.isArray(detail?.peers) ? detail.peers : [];
    this.#me = this.#peers.length ? detail?.me || "" : "";
    if (!this.#me) {
      // Out of the call (left, or not in yet): nothing is shown together here.
      this.#told = false;
      this.#control = "";
      this.#state = null;
      this.#unload();
      this.#render();
      return;
    }
    const newcomer = this.#peers.some((p) => !before.has(p.peer) && p.peer !== this.#me);
    if (newcomer && before.has(this.#me)) {
      // (Someone who just came in says nothing: a leader already there will speak.)
      // Whoever came in learns who leads and, from the leader, what is shown.
      if (this.#leading() && this.#state) {
        this.#send(this.#message());
      } else if (this.#amHost()) {
        this.#send({ control: this.#leader() });
      }
    }
    this.#render();
  }

  #receive(message) {
    const state = message?.state;
    const from = message?.from;
    if (!state || typeof state !== "object" || !from) {
      return;
    }
    const sender = this.#peers.find((p) => p.peer === from);
    if (typeof state.control === "string") {
      const fromHost = sender?.role === "host";
      const handsBack = from === this.#leader() && state.control === this.#host()?.peer;
      const claims = !this.#told && state.control === from; // a leader I have not been told of yet
      if (fromHost || handsBack || claims) {
        this.#control = state.control;
        this.#told = this.#told || fromHost;
      }
    }
    if (from === this.#leader() && "study" in state) {
      this.#show(pick(state));
    }
    this.#render();
  }

  #message() {
    return { control: this.#leader(), ...(this.#state || { study: null }) };
  }

  #send(state) {
    this.#sentAt = Date.now();
    this.#root.dispatchEvent(new CustomEvent("doorstep:call-view-send", { detail: state }));
  }

  /** The leader's view goes out at most every SEND_MS, the latest one last. */
  #queue() {
    if (this.#timer || !this.#leading()) {
      return;
    }
    const wait = Math.max(0, this.#sentAt + SEND_MS - Date.now());
    this.#timer = window.setTimeout(() => {
      this.#timer = 0;
      if (this.#leading()) {
        this.#send(this.#message());
      }
    }, wait);
  }

  // The frame --------------------------------------------------------------------------

  #open(study) {
    if (!this.#leading()) {
      return;
    }
    this.#state = { study };
    this.#load(study, null);
    this.#send(this.#message());
    this.#render();
  }

  #closeTogether() {
    if (!this.#leading()) {
      return;
    }
    this.#state = null;
    this.#unload();
    this.#send(this.#message());
    this.#render();
  }

  /** Show the leader's state: another study opens the frame again; else the frame applies it. */
  #show(state) {
    if (state.study && !this.#el.opens.some((button) => button.dataset.sharedOpen === state.study)) {
      return; // only the consult's attached studies are shown together
    }
    if (!state.study) {
      this.#state = null;
      this.#unload();
      return;
    }
    this.#state = state;
    if (this.#frameStudy !== state.study) {
      this.#load(state.study, state.series);
    } else {
      this.#post({ type: "apply", state });
    }
  }

  #load(study, series) {
    const url = new URL(`/studies/${encodeURIComponent(study)}/view`, window.location.origin);
    if (series) {
      url.searchParams.set("series", series);
    }
    url.searchParams.set("call", this.#consult);
    this.#frameStudy = study;
    this.#el.frame.src = url.pathname + url.search;
    this.#el.area.hidden = false;
    this.#panel.classList.add("is-sharing");
  }

  #unload() {
    this.#frameStudy = "";
    this.#el.frame.removeAttribute("src");
    this.#el.frame.src = "about:blank";
    this.#el.area.hidden = true;
    this.#panel.classList.remove("is-sharing");
  }

  #post(message) {
    this.#el.frame.contentWindow?.postMessage({ [MESSAGE]: message }, window.location.origin);
  }

  #fromFrame(event) {
    if (event.origin !== window.location.origin || event.source !== this.#el.frame.contentWindow) {
      return;
    }
    const message = event.data?.[MESSAGE];
    if (!message || typeof message !== "object" || !message.state || typeof message.state !== "object") {
      return;
    }
    const state = pick(message.state);
    this.#el.area.dataset.frameState = JSON.stringify(state);
    if (message.type === "ready") {
      this.#post({ type: "follow", following: !this.#leading() });
      if (!this.#leading() && this.#state?.study === state.study) {
        this.#post({ type: "apply", state: this.#state });
      }
    }
    if (this.#leading() && state.study && state.study === this.#frameStudy) {
      this.#state = state;
      this.#queue();
    }
  }

  // What the panel says ----------------------------------------------------------------

  #render() {
    const leader = this.#leader();
    const leading = this.#leading();
    const inCall = Boolean(this.#me);
    this.#panel.dataset.leader = leading ? "me" : leader ? "other" : "";
    for (const button of this.#el.opens) {
      button.disabled = !inCall || !leading;
    }
    this.#el.close.hidden = !leading;
    this.#el.who.textContent = !inCall
      ? this.#root.dataset.ended
        ? "The call has ended."
        : "Join the call to look at a study together."
      : leading
        ? this.#state
          ? "You are showing this study to everyone in the call."
          : "You lead: open a study to show it to everyone in the call."
        : leader
          ? `${this.#nameOf(leader)} is showing${this.#state ? "" : " (nothing open yet)"}. Your viewer follows theirs.`
          : "Waiting for the host.";
    this.#el.hands.replaceChildren();
    if (inCall && this.#amHost() && leading) {
      for (const peer of this.#peers.filter((p) => p.role === "participant")) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "button button-secondary button-small";
        button.textContent = `Let ${peer.name} lead`;
        button.addEventListener("click", () => this.#lead(peer.peer));
        this.#el.hands.append(button);
      }
    }
    this.#el.take.hidden = !(inCall && this.#amHost() && !leading);
    this.#el.give.hidden = !(inCall && !this.#amHost() && leading);
    this.#post({ type: "follow", following: !leading });
  }
}

/** The view fields of a state (not who leads). */
function pick(state) {
  const found = {};
  for (const name of FIELDS) {
    if (name in state) {
      found[name] = state[name];
    }
  }
  return found;
}
