/* Inactivity across the tabs of this site, for sign-out on shared clinic PCs and kiosk resets. */

const SHARED_KEY = "doorstep:last-activity";
const INPUT_EVENTS = ["keydown", "pointerdown", "wheel", "touchstart", "input"];
const THROTTLE_MS = 1000;

/**
 * Counts the time since the person last did anything, in this tab or another tab of the site
 * (through localStorage): onWarn() `warnBeforeMs` before `idleMs`, onExpire() at it. Any input
 * starts the clock again: onActive() then, and onActivity(now) at most once a second.
 */
export class IdleTimer {
  #idleMs;
  #warnAfterMs;
  #key;
  #onWarn;
  #onActive;
  #onActivity;
  #onExpire;
  #lastActivity = Date.now();
  #warned = false;
  #stopped = false;
  #warnTimer = null;
  #expireTimer = null;

  constructor({
    idleMs,
    warnBeforeMs = 0,
    onWarn = () => {},
    onActive = () => {},
    onActivity = () => {},
    onExpire = () => {},
    key = SHARED_KEY,
  }) {
    this.#idleMs = idleMs;
    this.#warnAfterMs = Math.max(idleMs - warnBeforeMs, 0);
    this.#key = key;
    this.#onWarn = onWarn;
    this.#onActive = onActive;
    this.#onActivity = onActivity;
    this.#onExpire = onExpire;
  }

  /** Listen for input here and in other tabs, and start the clock. */
  start() {
    for (const name of INPUT_EVENTS) {
      document.addEventListener(name, this.#input, { capture: true, passive: true });
    }
    document.addEventListener("mousemove", this.#input, { passive: true });
    window.addEventListener("storage", this.#storage);
    this.#share(this.#lastActivity);
    this.#schedule();
  }

  /** Count activity now (input does this by itself); false when throttled or stopped. */
  activity() {
    if (this.#stopped) {
      return false;
    }
    const now = Date.now();
    if (now - this.#lastActivity < THROTTLE_MS && !this.#warned) {
      return false;
    }
    this.#lastActivity = now;
    this.#resume();
    this.#share(now);
    this.#schedule();
    this.#onActivity(now);
    return true;
  }

  /** Stop for good: no more callbacks. */
  stop() {
    this.#stopped = true;
    window.clearTimeout(this.#warnTimer);
    window.clearTimeout(this.#expireTimer);
    for (const name of INPUT_EVENTS) {
      document.removeEventListener(name, this.#input, { capture: true });
    }
    document.removeEventListener("mousemove", this.#input);
    window.removeEventListener("storage", this.#storage);
  }

  #input = () => {
    this.activity();
  };

  #storage = (event) => {
    if (event.key === this.#key && this.#shared() > this.#lastActivity) {
      this.#lastActivity = this.#shared();
      this.#resume();
      this.#schedule();
    }
  };

  #resume() {
    this.#warned = false;
    this.#onActive();
  }

  #schedule() {
    window.clearTimeout(this.#warnTimer);
    window.clearTimeout(this.#expireTimer);
    const elapsed = Date.now() - this.#lastActivity;
    this.#warnTimer = window.setTimeout(() => this.#warn(), Math.max(this.#warnAfterMs - elapsed, 0));
    this.#expireTimer = window.setTimeout(() => this.#expire(), Math.max(this.#idleMs - elapsed, 0));
  }

  #warn() {
    if (this.#shared() > this.#lastActivity) {
      this.#lastActivity = this.#shared();
      this.#schedule();
      return;
    }
    this.#warned = true;
    this.#onWarn();
  }

  #expire() {
    if (this.#shared() > this.#lastActivity) {
      this.#lastActivity = this.#shared();
      this.#resume();
      this.#schedule();
      return;
    }
    this.stop();
    this.#onExpire();
  }

  #shared() {
    try {
      return parseInt(window.localStorage.getItem(this.#key) || "0", 10) || 0;
    } catch {
      return 0;
    }
  }

  #share(now) {
    try {
      window.localStorage.setItem(this.#key, String(now));
    } catch {
      /* storage may be disabled; this tab still works on its own */
    }
  }
}
