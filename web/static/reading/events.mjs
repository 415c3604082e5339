/*
 * The events WebSocket (/api/v1/events) with reconnection: exponential backoff from 1 s to 30 s,
 * reset once the server says "ready". onOpen runs on every (re)connect, so that a page re-fetches
 * what it shows (events are not durable: those sent while it was away are lost).
 */
const FIRST_DELAY_MS = 1000;
const LAST_DELAY_MS = 30_000;

export function eventsUrl(location = window.location) {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/api/v1/events`;
}

export class EventStream {
  #onOpen;
  #onClose;
  #onEvent;
  #delay = FIRST_DELAY_MS;
  #socket = null;
  #stopped = false;
  #timer = 0;

  constructor({ onOpen = () => {}, onClose = () => {}, onEvent = () => {} }) {
    this.#onOpen = onOpen;
    this.#onClose = onClose;
    this.#onEvent = onEvent;
  }

  start() {
    this.#stopped = false;
    this.#connect();
    window.addEventListener("pagehide", () => this.stop(), { once: true });
  }

  stop() {
    this.#stopped = true;
    window.clearTimeout(this.#timer);
    this.#socket?.close();
  }

  #connect() {
    const socket = new WebSocket(eventsUrl());
    this.#socket = socket;
    socket.addEventListener("message", (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      if (data && data.channel === "system" && data.event && data.event.type === "ready") {
        this.#delay = FIRST_DELAY_MS;
        this.#onOpen();
      } else if (data && data.event) {
        this.#onEvent(data.channel, data.event);
      }
    });
    socket.addEventListener("close", () => {
      if (this.#stopped || this.#socket !== socket) {
        return;
      }
      const delay = this.#delay;
      this.#delay = Math.min(LAST_DELAY_MS, this.#delay * 2);
      this.#onClose(Math.round(delay / 1000));
      this.#timer = window.setTimeout(() => this.#connect(), delay);
    });
  }
}
