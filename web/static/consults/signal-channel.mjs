/*
 * The signaling socket of a call (/api/v1/consults/{id}/signal) that heals itself: every (re)open
 * sends {"type": "join"}; a socket that drops is opened again with a backoff (0.5 s doubling to
 * 8 s, at once when the browser comes back online), until the call is left or has ended. When
 * the browser says it went offline the socket is dropped at once rather than left to time out.
 * Only chat waits for the socket: offers and candidates of a dead socket are stale, and the
 * call renegotiates after the rejoin instead.
 */
const FIRST_DELAY_MS = 500;
const LAST_DELAY_MS = 8000;
const QUEUED = new Set(["chat"]);

export function signalUrl(consultId, location = window.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/v1/consults/${encodeURIComponent(consultId)}/signal`;
}

export class SignalChannel {
  #url;
  #onMessage;
  #onState;
  #socket = null;
  #delay = FIRST_DELAY_MS;
  #timer = 0;
  #stopped = true;
  #queue = [];

  /**
   * onMessage(message) for each server message; onState(state, detail) with "connecting",
   * "open", "retrying" (detail: seconds), "ended" (the consult ended), "replaced" (the user
   * joined again elsewhere) or "closed" (left).
   */
  constructor(url, { onMessage, onState }) {
    this.#url = url;
    this.#onMessage = onMessage;
    this.#onState = onState;
    this.online = () => {
      if (!this.#stopped && (!this.#socket || this.#socket.readyState > WebSocket.OPEN)) {
        window.clearTimeout(this.#timer);
        this.#delay = FIRST_DELAY_MS;
        this.#connect();
      }
    };
    this.offline = () => this.drop();
  }

  get open() {
    return this.#socket !== null && this.#socket.readyState === WebSocket.OPEN;
  }

  start() {
    this.#stopped = false;
    window.addEventListener("online", this.online);
    window.addEventListener("offline", this.offline);
    this.#connect();
  }

  /** Send a message; false if it was dropped (not open, and not a kind that waits). */
  send(message) {
    if (this.open) {
      this.#socket.send(JSON.stringify(message));
      return true;
    }
    if (QUEUED.has(message.type)) {
      this.#queue.push(message);
      return true;
    }
    return false;
  }

  /** Leave the call: say so, and stop reconnecting. */
  leave() {
    if (this.open) {
      this.#socket.send(JSON.stringify({ type: "leave" }));
    }
    this.stop("closed");
  }

  stop(state = "closed") {
    if (this.#stopped) {
      return;
    }
    this.#stopped = true;
    window.clearTimeout(this.#timer);
    window.removeEventListener("online", this.online);
    window.removeEventListener("offline", this.offline);
    const socket = this.#socket;
    this.#socket = null;
    socket?.close(1000);
    this.#onState(state);
  }

  /** Give up on the socket now (the network went away) and open another. */
  drop() {
    const socket = this.#socket;
    if (this.#stopped || !socket) {
      return;
    }
    this.#socket = null;
    socket.close(4000, "dropped");
    this.#retry();
  }

  #connect() {
    this.#onState("connecting");
    let socket;
    try {
      socket = new WebSocket(this.#url);
    } catch {
      this.#retry();
      return;
    }
    this.#socket = socket;
    socket.addEventListener("open", () => {
      if (this.#socket !== socket) {
        return;
      }
      socket.send(JSON.stringify({ type: "join" }));
    });
    socket.addEventListener("message", (event) => {
      if (this.#socket !== socket) {
        return;
      }
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!message || typeof message.type !== "string") {
        return;
      }
      if (message.type === "welcome") {
        this.#delay = FIRST_DELAY_MS;
        this.#onState("open");
        for (const waiting of this.#queue.splice(0)) {
          socket.send(JSON.stringify(waiting));
        }
      }
      if (message.type === "error" && (message.code === "ended" || message.code === "replaced")) {
        this.#onMessage(message);
        this.stop(message.code);
        return;
      }
      this.#onMessage(message);
    });
    socket.addEventListener("close", (event) => {
      if (this.#socket !== socket || this.#stopped) {
        return;
      }
      this.#socket = null;
      if (event.code === 1000 && event.reason === "ended") {
        this.stop("ended");
        return;
      }
      this.#retry();
    });
  }

  #retry() {
    const delay = this.#delay;
    this.#delay = Math.min(LAST_DELAY_MS, this.#delay * 2);
    this.#onState("retrying", Math.max(1, Math.round(delay / 1000)));
    this.#timer = window.setTimeout(() => this.#connect(), delay);
  }
}
