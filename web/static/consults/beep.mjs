/*
 * A short two-tone beep with the Web Audio API (no audio file). Browsers let a page make a sound
 * only after a user gesture, so the AudioContext is made or resumed on the first click or key
 * press (the on-duty toggle's click counts); before that, and wherever audio fails, it is silent.
 */
export class Beeper {
  #context = null;

  constructor(target = document) {
    const prime = () => this.prime();
    for (const type of ["pointerdown", "keydown"]) {
      target.addEventListener(type, prime, { capture: true, passive: true });
    }
  }

  /** Make (or resume) the AudioContext: call from a user gesture. */
  prime() {
    try {
      if (!this.#context && window.AudioContext) {
        this.#context = new window.AudioContext();
      }
      if (this.#context && this.#context.state === "suspended") {
        this.#context.resume().catch(() => {});
      }
    } catch {
      this.#context = null;
    }
  }

  /** Two short tones; true when the sound was started. */
  beep() {
    const context = this.#context;
    if (!context || context.state !== "running") {
      return false;
    }
    try {
      const start = context.currentTime + 0.01;
      for (const [offset, frequency] of [
        [0, 880],
        [0.22, 1175],
      ]) {
        const oscillator = context.createOscillator();
        const gain = context.createGain();
        oscillator.type = "sine";
        oscillator.frequency.value = frequency;
        gain.gain.setValueAtTime(0.0001, start + offset);
        gain.gain.exponentialRampToValueAtTime(0.25, start + offset + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.18);
        oscillator.connect(gain).connect(context.destination);
        oscillator.start(start + offset);
        oscillator.stop(start + offset + 0.2);
      }
      return true;
    } catch {
      return false;
    }
  }
}
