/* The kiosk enrolment screen's on-screen number keypad: digits into the code field, grouped. */

const GROUP = 4;

/**
 * <section data-module="enrol-keypad" data-enrol-digits="12">: shows the keypad
 * ([data-enrol-keypad], buttons with data-key 0-9, "back", "clear"), keeps the code field
 * ([data-enrol-input]) as digits in groups of four and says how many are typed.
 */
export default class EnrolKeypad {
  static moduleName = "enrol-keypad";

  #input;
  #count;
  #digits;

  constructor(root) {
    this.#input = root.querySelector("[data-enrol-input]");
    this.#count = root.querySelector("[data-enrol-count]");
    const keypad = root.querySelector("[data-enrol-keypad]");
    this.#digits = parseInt(root.getAttribute("data-enrol-digits") || "12", 10) || 12;
    if (!this.#input || !keypad) {
      return;
    }
    keypad.hidden = false;
    // The keypad is the keyboard: no on-screen system keyboard over it (a real one still works).
    this.#input.setAttribute("inputmode", "none");
    keypad.addEventListener("click", (event) => {
      const key = event.target.closest("[data-key]");
      if (key) {
        this.#press(key.getAttribute("data-key"));
      }
    });
    this.#input.addEventListener("input", () => this.#show(this.#typed()));
    this.#show(this.#typed());
  }

  #typed() {
    return this.#input.value.replace(/\D/g, "").slice(0, this.#digits);
  }

  #press(key) {
    let digits = this.#typed();
    if (key === "back") {
      digits = digits.slice(0, -1);
    } else if (key === "clear") {
      digits = "";
    } else if (/^\d$/.test(key) && digits.length < this.#digits) {
      digits += key;
    }
    this.#show(digits);
  }

  #show(digits) {
    const groups = digits.match(new RegExp(`.{1,${GROUP}}`, "g")) || [];
    this.#input.value = groups.join("-");
    if (this.#count) {
      this.#count.textContent = `${digits.length} / ${this.#digits}`;
    }
  }
}
