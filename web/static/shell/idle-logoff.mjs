/* Sign-out after inactivity: the warning toast of base.html and the server session's keep-alive. */
import { apiFetch } from "../core/fetch.mjs";
import { IdleTimer } from "../core/idle.mjs";
import { signOut } from "../core/session.mjs";

const WARN_BEFORE_MS = 60 * 1000;
const KEEPALIVE_MS = 60 * 1000;

/**
 * <div data-module="idle-logoff" data-idle-minutes="15">: warn one minute before the idle limit
 * (#idle-warning), then sign out; any input starts the clock again.
 */
export default class IdleLogoff {
  static moduleName = "idle-logoff";

  #toast;
  #timer = null;
  #lastServerContact = Date.now();

  constructor(root) {
    this.#toast = document.getElementById("idle-warning");
    const minutes = parseFloat(root.getAttribute("data-idle-minutes") || "");
    if (!this.#toast || !(minutes > 0)) {
      return;
    }
    this.#timer = new IdleTimer({
      idleMs: minutes * 60 * 1000,
      warnBeforeMs: WARN_BEFORE_MS,
      onWarn: () => {
        this.#toast.hidden = false;
      },
      onActive: () => {
        this.#toast.hidden = true;
      },
      onActivity: (now) => this.#keepAlive(now),
      onExpire: () => signOut("idle"),
    });
    const stay = this.#toast.querySelector("[data-idle-stay]");
    if (stay) {
      stay.addEventListener("click", () => {
        this.#lastServerContact = 0;
        this.#timer.activity();
      });
    }
    this.#timer.start();
  }

  /** The server measures idleness by requests: tell it the person is still here. */
  #keepAlive(now) {
    if (now - this.#lastServerContact < KEEPALIVE_MS) {
      return;
    }
    this.#lastServerContact = now;
    apiFetch("/api/v1/me").then(
      (response) => {
        if (response.status === 401) {
          this.#timer.stop();
          window.location.assign("/login?reason=idle");
        }
      },
      () => {
        /* offline: the next activity tries again */
      },
    );
  }
}
