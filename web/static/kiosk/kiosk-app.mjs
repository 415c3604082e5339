/*
 * <main data-module="kiosk-app">: the kiosk's screens, one decision each (<section
 * data-screen>), for one person's visit: language → how to identify → number → date of birth →
 * consent → (welcome back, the trend) → blood pressure → the other measurements → results →
 * queue → call → summary, and the follow-up booking. Every word comes from the page (data-msg-*
 * templates with {placeholders}); dates and numbers are formatted with Intl in the page's locale.
 *
 * Privacy: nothing is written to any storage or cookie; the history is only ever replaced
 * (location.replace, never pushState), so the next person can go back to nothing. "Finish",
 * "Start again" and the inactivity reset close the visit and load a fresh /kiosk, on which the
 * server closes whatever was left open. Feedback: every touch gives a pressed state and a short
 * click; an urgent flag beeps.
 */
import { ApiError, fetchJson } from "../core/fetch.mjs";
import { Beeper } from "../consults/beep.mjs";
import { EventStream } from "../reading/events.mjs";
import { drawBpChart, fill, fillBpTable } from "./bp-chart.mjs";

const POLL_MS = 3000;
/** How often the kiosk asks whether its credential still works (a revoked kiosk stops). */
const CREDENTIAL_MS = 10000;
const SUMMARY_POLL_MS = 5000;
const FIRST_SCREEN = "/kiosk";

/**
 * fetchJson for the kiosk: an answer of 401 means the device's credential was revoked (or the
 * kiosk disabled), so the kiosk stops at once: /kiosk then shows the enrolment screen.
 */
async function api(url, options = undefined) {
  try {
    return await fetchJson(url, options);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      window.location.replace(FIRST_SCREEN);
    }
    throw error;
  }
}
const MEASURES = ["bp", "spo2", "glucose", "temperature", "weight"];
const BACK = {
  number: "identify",
  birth: "number",
  consent: "birth",
  declined: "consent",
  spo2: "bp",
  glucose: "spo2",
  temperature: "glucose",
  weight: "temperature",
  slots: "specialty",
  where: "slots",
};
/** Screens on which a person may well not touch anything for long: no inactivity reset. */
const PATIENT_SCREENS = new Set(["language", "queue", "call"]);
/** Which result row a flag belongs to, by the words of its code. */
const FLAG_ROWS = [
  [/pressure|hypertens|hypotens|bp/, "bp"],
  [/heart|pulse|brady|tachy/, "heart_rate"],
  [/spo2|oxygen|hypox/, "spo2"],
  [/glucose|sugar|glyc/, "glucose_mmol_l"],
  [/fever|temperature|hypotherm|pyrex/, "temperature_c"],
  [/weight|bmi/, "weight_kg"],
];
const CARDIAC = new Set(["bp", "heart_rate"]);
/** Where each screen is in the visit (the step list at the top). */
const STEPS = {
  identify: "check-in",
  number: "check-in",
  birth: "check-in",
  consent: "check-in",
  declined: "check-in",
  welcome: "measure",
  bp: "measure",
  spo2: "measure",
  glucose: "measure",
  temperature: "measure",
  weight: "measure",
  results: "results",
  queue: "doctor",
  call: "doctor",
  specialty: "doctor",
  slots: "doctor",
  where: "doctor",
  booked: "doctor",
  summary: "summary",
  clinic: "summary",
};
const SEVERITY_RANK = { urgent: 0, warning: 1, info: 2 };

/** Short sounds with the Web Audio API: a click on each touch, a tick of the countdown. */
class Sounds {
  #context = null;

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

  tone(frequency, seconds, volume = 0.15) {
    const context = this.#context;
    if (!context || context.state !== "running") {
      return false;
    }
    try {
      const start = context.currentTime + 0.005;
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(volume, start + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + seconds);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(start);
      oscillator.stop(start + seconds + 0.02);
      return true;
    } catch {
      return false;
    }
  }

  click() {
    return this.tone(660, 0.06);
  }

  tick() {
    return this.tone(990, 0.08, 0.2);
  }
}

export default class KioskApp {
  static moduleName = "kiosk-app";

  #root;
  #msg;
  #locale;
  #language;
  #screens = new Map();
  #screen = "";
  #sounds = new Sounds();
  #beeper;
  #active = new Map();
  #identifyBy = "phone";
  #visit = null;
  #vitals = {};
  #flags = [];
  #device = {};
  #queue = null;
  #consultId = null;
  #events = null;
  #call = null;
  #followUp = null;
  #bookFrom = "results";
  #clinicFrom = "summary";
  #specialty = "general";
  #slots = [];
  #slot = null;
  #poll = 0;
  #idleSeconds;
  #warnSeconds;
  #lastTouch = Date.now();
  #countdown = 0;
  #idleTimer = 0;
  #leaving = false;

  constructor(root) {
    this.#root = root;
    const data = root.dataset;
    this.#locale = data.intlLocale || "en-GB";
    this.#language = data.language || "en";
    this.#idleSeconds = Math.max(1, Number(data.idleSeconds) || 90);
    this.#warnSeconds = Math.max(1, Number(data.warnSeconds) || 30);
    this.#msg = (key, values = {}) => fill(data[`msg${key.replace(/(^|-)(\w)/g, (_, __, c) => c.toUpperCase())}`] || "", values);
    for (const section of root.querySelectorAll("[data-screen]")) {
      this.#screens.set(section.dataset.screen, section);
    }
    this.#beeper = new Beeper(root);
    this.#wire();
    this.#show(data.start === "identify" ? "identify" : "language");
    this.#idleTimer = window.setInterval(() => this.#idleCheck(), 1000);
    window.setInterval(() => api("/api/v1/me").catch(() => {}), CREDENTIAL_MS);
    root.dataset.kioskReady = "";
  }

  // Screens -----------------------------------------------------------------------------

  #show(name) {
    const section = this.#screens.get(name);
    if (!section) {
      return;
    }
    if (this.#screen === "bp" && name !== "bp") {
      this.#stopPolling();
    }
    for (const [key, other] of this.#screens) {
      other.hidden = key !== name;
    }
    this.#screen = name;
    this.#root.dataset.current = name;
    this.#root.querySelector("[data-restart-button]").hidden = name === "language";
    const progress = this.#root.querySelector("[data-progress]");
    progress.hidden = !STEPS[name] || name === "call";
    let reached = true;
    for (const step of progress.querySelectorAll("[data-step]")) {
      const current = step.dataset.step === STEPS[name];
      step.classList.toggle("is-done", reached && !current);
      if (current) {
        step.setAttribute("aria-current", "step");
        reached = false;
      } else {
        step.removeAttribute("aria-current");
      }
    }
    const title = section.querySelector(".kiosk-title");
    window.scrollTo(0, 0);
    title?.focus({ preventScroll: true });
    const first = section.querySelector("[data-entry]:not([hidden])");
    if (first && !this.#active.get(name)) {
      this.#activate(this.#entries(section)[0]);
    }
    if (name === "bp") {
      this.#watchCuff();
    }
  }

  #error(key, text) {
    for (const place of this.#root.querySelectorAll(`[data-error-for="${key}"]`)) {
      place.textContent = text || "";
      place.hidden = !text;
    }
    const entry = this.#root.querySelector(`[data-entry="${key}"]`);
    if (entry) {
      entry.setAttribute("aria-invalid", text ? "true" : "false");
    }
  }

  #clearErrors(section) {
    for (const place of section.querySelectorAll("[data-error-for]")) {
      place.textContent = "";
      place.hidden = true;
    }
    for (const entry of section.querySelectorAll("[data-entry]")) {
      entry.removeAttribute("aria-invalid");
    }
  }

  #failure(error) {
    return error instanceof ApiError && error.status === 0 ? this.#msg("offline") : this.#msg("error");
  }

  // Touch, keypad and actions --------------------------------------------------------------

  #wire() {
    const root = this.#root;
    root.addEventListener(
      "pointerdown",
      (event) => {
        this.#touched();
        this.#sounds.prime();
        const button = event.target.closest("button");
        if (button && !button.disabled) {
          button.classList.add("is-pressed");
          this.#sounds.click();
        }
      },
      { capture: true },
    );
    for (const type of ["pointerup", "pointercancel", "pointerleave"]) {
      root.addEventListener(type, (event) => event.target.closest?.("button")?.classList.remove("is-pressed"), { capture: true });
    }
    for (const type of ["keydown", "input", "wheel", "touchstart"]) {
      document.addEventListener(type, () => this.#touched(), { capture: true, passive: true });
    }
    root.addEventListener("click", (event) => this.#click(event));
    root.addEventListener("input", (event) => {
      if (event.target.matches("[data-entry]")) {
        this.#clean(event.target);
      }
    });
    root.addEventListener("focusin", (event) => {
      if (event.target.matches("[data-entry]")) {
        this.#activate(event.target);
      }
    });
    root.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target.matches("[data-entry]")) {
        event.preventDefault();
        this.#screenAction("next");
      }
    });
    root.querySelector("[data-idle-stay]").addEventListener("click", () => this.#stillHere());
    const toggle = root.querySelector("[data-chart-toggle]");
    toggle.addEventListener("click", () => {
      const wrap = root.querySelector("[data-bp-table-wrap]");
      const chart = root.querySelector("[data-bp-chart]");
      const showTable = wrap.hidden;
      wrap.hidden = !showTable;
      chart.hidden = showTable;
      toggle.setAttribute("aria-expanded", String(showTable));
      toggle.textContent = this.#msg(showTable ? "chart-show-chart" : "chart-show-table");
    });
  }

  #click(event) {
    const button = event.target.closest("button");
    if (!button || button.disabled || !this.#root.contains(button)) {
      return;
    }
    const d = button.dataset;
    if (d.key) {
      this.#key(button.closest("[data-screen]"), d.key);
    } else if (d.lang) {
      this.#leave(`${FIRST_SCREEN}?lang=${encodeURIComponent(d.lang)}`);
    } else if (d.identify) {
      this.#identify(d.identify);
    } else if (d.consent) {
      this.#consent(d.consent === "yes");
    } else if (d.fastingChoice) {
      for (const other of button.parentElement.querySelectorAll("[data-fasting-choice]")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
    } else if (d.specialty) {
      this.#chooseSpecialty(d.specialty);
    } else if (d.slotIndex) {
      this.#chooseSlot(Number(d.slotIndex));
    } else if (d.clinicId) {
      this.#linkClinic(Number(d.clinicId), button.textContent);
    } else if (d.where) {
      this.#book(d.where);
    } else if (d.callMute !== undefined) {
      const muted = this.#call?.toggleMute() ?? false;
      button.setAttribute("aria-pressed", String(muted));
      button.textContent = this.#msg(muted ? "unmute" : "mute");
    } else if (d.callCamera !== undefined) {
      const off = this.#call?.toggleCamera() ?? false;
      button.setAttribute("aria-pressed", String(off));
      button.textContent = this.#msg(off ? "camera-on" : "camera-off");
    } else if (d.action) {
      this.#screenAction(d.action);
    }
  }

  #screenAction(action) {
    const screen = this.#screen;
    switch (action) {
      case "back":
        if (screen === "identify") {
          this.#leave(FIRST_SCREEN);
        } else if (screen === "specialty") {
          this.#show(this.#bookFrom);
        } else if (screen === "clinic") {
          this.#show(this.#clinicFrom);
        } else if (BACK[screen]) {
          this.#show(BACK[screen]);
        }
        break;
      case "next":
        this.#next(screen);
        break;
      case "skip":
        this.#afterMeasure(screen);
        break;
      case "restart":
        this.#finish("reset");
        break;
      case "finish":
        this.#finish("finish");
        break;
      case "queue":
        this.#joinQueue();
        break;
      case "leave-queue":
        this.#leaveQueue();
        break;
      case "hang-up":
        this.#hangUp();
        break;
      case "book":
        this.#bookFrom = screen;
        this.#startBooking();
        break;
      case "summary":
        this.#showSummary();
        break;
      case "clinic":
        this.#clinicFrom = screen;
        this.#loadClinics();
        break;
      case "print":
        window.print();
        break;
      case "join-follow-up":
        this.#joinFollowUp();
        break;
      default:
        break;
    }
  }

  #entries(section) {
    return [...section.querySelectorAll("[data-entry]")].filter((e) => !e.closest("[hidden]"));
  }

  #activate(entry) {
    if (!entry) {
      return;
    }
    const section = entry.closest("[data-screen]");
    for (const other of section.querySelectorAll("[data-entry]")) {
      other.classList.toggle("is-active", other === entry);
    }
    this.#active.set(section.dataset.screen, entry);
  }

  #key(section, key) {
    let entry = this.#active.get(section.dataset.screen);
    if (!entry || entry.closest("[hidden]")) {
      entry = this.#entries(section)[0];
      this.#activate(entry);
    }
    if (!entry) {
      return;
    }
    if (key === "delete") {
      entry.value = entry.value.slice(0, -1);
      if (!entry.value && section.dataset.screen === "birth") {
        const entries = this.#entries(section);
        const before = entries[entries.indexOf(entry) - 1];
        if (before) {
          this.#activate(before);
        }
      }
    } else {
      entry.value += key;
    }
    this.#clean(entry);
    this.#error(entry.dataset.entry, "");
    const max = Number(entry.dataset.max) || 3;
    if (key !== "delete" && entry.value.length >= max) {
      const entries = this.#entries(section);
      const after = entries[entries.indexOf(entry) + 1];
      if (after) {
        this.#activate(after);
      }
    }
  }

  /** Keep what an entry may hold: digits, one decimal point, an X last for an ID number. */
  #clean(entry) {
    const max = Number(entry.dataset.max) || 3;
    const decimals = Number(entry.dataset.decimals) || 0;
    let value = entry.value.toUpperCase();
    if (entry.dataset.entry === "id_number") {
      value = value.replace(/[^0-9X]/g, "").replace(/X(?=.)/g, "");
    } else if (decimals) {
      value = value.replace(/[^0-9.]/g, "");
      const [whole, ...rest] = value.split(".");
      value = rest.length ? `${whole}.${rest.join("").slice(0, decimals)}` : whole;
    } else {
      value = value.replace(/[^0-9]/g, "");
    }
    entry.value = value.slice(0, max);
  }

  #value(name) {
    return this.#root.querySelector(`[data-entry="${name}"]`)?.value.trim() || "";
  }

  // Check-in ---------------------------------------------------------------------------

  #identify(by) {
    this.#identifyBy = by;
    const section = this.#screens.get("number");
    for (const part of section.querySelectorAll("[data-when]")) {
      part.hidden = part.dataset.when !== by;
    }
    this.#active.delete("number");
    this.#show("number");
  }

  #next(screen) {
    const section = this.#screens.get(screen);
    this.#clearErrors(section);
    if (screen === "number") {
      const number = this.#value(this.#identifyBy);
      if (number.length < 6) {
        this.#error(this.#identifyBy, this.#msg("number-short"));
        return;
      }
      this.#show("birth");
    } else if (screen === "birth") {
      if (!this.#birthDate()) {
        this.#error("birth_date", this.#msg("date-invalid"));
        return;
      }
      this.#show("consent");
    } else if (screen === "welcome") {
      this.#show("bp");
    } else if (MEASURES.includes(screen)) {
      this.#measure(screen);
    }
  }

  #birthDate() {
    const year = Number(this.#value("year"));
    const month = Number(this.#value("month"));
    const day = Number(this.#value("day"));
    const moment = new Date(Date.UTC(year, month - 1, day));
    const valid =
      year >= 1900 &&
      moment.getUTCFullYear() === year &&
      moment.getUTCMonth() === month - 1 &&
      moment.getUTCDate() === day &&
      moment.getTime() <= Date.now();
    if (!valid) {
      return "";
    }
    return `${String(year).padStart(4, "0")}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
  }

  async #consent(yes) {
    if (!yes) {
      this.#show("declined");
      return;
    }
    const body = {
      [this.#identifyBy]: this.#value(this.#identifyBy),
      birth_date: this.#birthDate(),
      consent: true,
      language: this.#language,
    };
    const buttons = this.#screens.get("consent").querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      this.#visit = await api("/api/v1/kiosk/visits", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (error) {
      const field = error.details && error.details.field;
      if (error.status === 422 && (field === "phone" || field === "id_number")) {
        this.#show("number");
        this.#error(field, error.message);
      } else if (error.status === 422 && field === "birth_date") {
        this.#show("birth");
        this.#error("birth_date", error.message);
      } else {
        this.#error("check_in", error.status === 422 ? error.message : this.#failure(error));
      }
      return;
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
    // The number and date of birth are not needed any more: out of the page with them.
    for (const name of ["phone", "id_number", "year", "month", "day"]) {
      const entry = this.#root.querySelector(`[data-entry="${name}"]`);
      if (entry) {
        entry.value = "";
      }
    }
    this.#root.dataset.visit = String(this.#visit.id);
    this.#refreshVisit();
    if (this.#visit.returning && (await this.#history())) {
      this.#show("welcome");
    } else {
      this.#show("bp");
    }
  }

  async #history() {
    let found;
    try {
      found = await api(`/api/v1/kiosk/people/${this.#visit.person_id}/vitals`);
    } catch {
      return false;
    }
    const readings = found.readings || [];
    const text = drawBpChart(this.#root.querySelector("[data-bp-chart]"), readings, {
      locale: this.#locale,
      summary: this.#msg("chart-summary"),
    });
    fillBpTable(this.#root.querySelector("[data-bp-table]"), readings, this.#locale);
    return Boolean(text);
  }

  /** The visit as the server has it: vitals a device posted, a follow-up due now. */
  async #refreshVisit() {
    if (!this.#visit) {
      return null;
    }
    let visit;
    try {
      visit = await api(`/api/v1/kiosk/visits/${this.#visit.id}`);
    } catch {
      return null;
    }
    const due = visit.due_follow_up;
    const banner = this.#root.querySelector("[data-due]");
    this.#followUp = due || null;
    banner.hidden = !due || ["call", "queue"].includes(this.#screen);
    if (due) {
      banner.querySelector("[data-due-text]").textContent = this.#msg("due", { name: due.specialist || "" });
    }
    return visit;
  }

  // Measurements -------------------------------------------------------------------------

  #watchCuff() {
    const status = this.#root.querySelector("[data-cuff-status]");
    status.textContent = this.#msg("cuff-waiting");
    this.#stopPolling();
    this.#poll = window.setInterval(async () => {
      const visit = await this.#refreshVisit();
      const vitals = visit?.vitals || {};
      if (this.#screen !== "bp" || !Number.isFinite(vitals.systolic)) {
        return;
      }
      if (vitals.systolic === this.#device.systolic && vitals.diastolic === this.#device.diastolic) {
        return;
      }
      this.#device = { ...vitals };
      this.#vitals = { ...vitals };
      this.#flags = visit.flags || [];
      for (const name of ["systolic", "diastolic", "heart_rate"]) {
        const entry = this.#root.querySelector(`[data-entry="${name}"]`);
        if (Number.isFinite(vitals[name])) {
          entry.value = String(vitals[name]);
        }
      }
      status.textContent = this.#msg("cuff-done");
    }, POLL_MS);
  }

  #stopPolling() {
    window.clearInterval(this.#poll);
    this.#poll = 0;
  }

  async #measure(screen) {
    const section = this.#screens.get(screen);
    const names = section.dataset.measure.split(" ");
    const body = {};
    for (const name of names) {
      if (name === "glucose_fasting") {
        continue;
      }
      const text = this.#value(name);
      if (text) {
        const number = Number(text);
        body[name] = Number.isFinite(number) ? number : text;
      }
    }
    if ("glucose_mmol_l" in body) {
      const chosen = section.querySelector('[data-fasting-choice][aria-pressed="true"]');
      if (chosen) {
        body.glucose_fasting = chosen.dataset.fastingChoice === "true";
      }
    }
    if (!Object.keys(body).length) {
      this.#error(names[0], this.#msg("required"));
      this.#activate(this.#entries(section)[0]);
      return;
    }
    const fromDevice = Object.entries(body).every(([key, value]) => this.#device[key] === value);
    if (!fromDevice) {
      const next = section.querySelector("[data-action=next]");
      next.disabled = true;
      try {
        const answer = await api(`/api/v1/kiosk/visits/${this.#visit.id}/vitals`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
        this.#vitals = answer.vitals || {};
        this.#flags = answer.flags || [];
      } catch (error) {
        const field = error.details && error.details.field;
        if (error.status === 422 && field) {
          this.#error(field, error.message);
          this.#activate(this.#root.querySelector(`[data-entry="${field}"]`));
        } else {
          this.#error(names[0], this.#failure(error));
        }
        return;
      } finally {
        next.disabled = false;
      }
    }
    this.#afterMeasure(screen);
  }

  #afterMeasure(screen) {
    const index = MEASURES.indexOf(screen);
    if (index >= 0 && index < MEASURES.length - 1) {
      this.#show(MEASURES[index + 1]);
    } else {
      this.#results();
    }
  }

  #rowOf(flag) {
    const code = String(flag.code || "").toLowerCase();
    for (const [pattern, row] of FLAG_ROWS) {
      if (pattern.test(code)) {
        return row;
      }
    }
    return "";
  }

  #results() {
    const number = new Intl.NumberFormat(this.#locale, { maximumFractionDigits: 1 });
    const v = this.#vitals;
    const shown = {
      bp: Number.isFinite(v.systolic) ? `${number.format(v.systolic)}/${number.format(v.diastolic)}` : "",
      heart_rate: Number.isFinite(v.heart_rate) ? number.format(v.heart_rate) : "",
      spo2: Number.isFinite(v.spo2) ? number.format(v.spo2) : "",
      glucose_mmol_l: Number.isFinite(v.glucose_mmol_l)
        ? `${number.format(v.glucose_mmol_l)}${typeof v.glucose_fasting === "boolean" ? ` (${this.#msg(v.glucose_fasting ? "fasting" : "not-fasting")})` : ""}`
        : "",
      temperature_c: Number.isFinite(v.temperature_c) ? number.format(v.temperature_c) : "",
      weight_kg: Number.isFinite(v.weight_kg) ? number.format(v.weight_kg) : "",
    };
    const flags = [...this.#flags].sort(
      (a, b) => (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3),
    );
    const section = this.#screens.get("results");
    for (const row of section.querySelectorAll("[data-result]")) {
      const key = row.dataset.result;
      row.hidden = !shown[key];
      row.querySelector("[data-value]").textContent = shown[key];
      const worst = flags.find((f) => this.#rowOf(f) === key);
      const badge = row.querySelector("[data-flag]");
      badge.textContent = worst ? this.#msg(`severity-${worst.severity}`) : "";
      badge.dataset.severity = worst ? worst.severity : "";
      row.dataset.severity = worst ? worst.severity : "";
    }
    const urgent = flags.filter((f) => f.severity === "urgent");
    const box = section.querySelector("[data-urgent]");
    const urgentList = section.querySelector("[data-urgent-list]");
    urgentList.replaceChildren(...urgent.map((f) => this.#flagItem(f)));
    box.hidden = !urgent.length;
    box.setAttribute("role", urgent.length ? "alert" : "none");
    const others = flags.filter((f) => f.severity !== "urgent");
    section.querySelector("[data-flags]").replaceChildren(...others.map((f) => this.#flagItem(f)));
    const note = section.querySelector("[data-results-note]");
    note.textContent = !Object.values(shown).some(Boolean)
      ? this.#msg("nothing-measured")
      : flags.length
        ? ""
        : this.#msg("no-flags");
    section.querySelector("[data-queue-urgent]").hidden = !urgent.length;
    section.querySelector("[data-queue-normal]").hidden = urgent.length > 0;
    section.dataset.urgent = urgent.length ? "yes" : "no";
    this.#specialty = flags.some((f) => CARDIAC.has(this.#rowOf(f)) && f.severity !== "info")
      ? "cardiology"
      : "general";
    this.#show("results");
    if (urgent.length) {
      if (this.#beeper.beep()) {
        section.dataset.beeped = "yes";
      }
      section.querySelector("[data-queue-urgent]").focus({ preventScroll: true });
    }
  }

  #flagItem(flag) {
    const item = document.createElement("li");
    item.className = `kiosk-flag-item kiosk-flag-${flag.severity}`;
    item.dataset.code = flag.code || "";
    const mark = document.createElement("span");
    mark.className = "kiosk-flag-mark";
    mark.textContent = this.#msg(`severity-${flag.severity}`);
    const text = document.createElement("span");
    text.className = "kiosk-flag-text";
    text.textContent = flag.message || "";
    item.append(mark, " ", text);
    return item;
  }

  // The queue ------------------------------------------------------------------------------

  async #joinQueue() {
    const status = this.#root.querySelector("[data-queue-status]");
    status.textContent = "";
    this.#queueButtons(false);
    let answer;
    try {
      answer = await api(`/api/v1/kiosk/visits/${this.#visit.id}/queue`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: "{}",
      });
    } catch (error) {
      this.#show("queue");
      status.textContent = this.#failure(error);
      this.#queueButtons(true);
      return;
    }
    this.#waitInQueue(answer);
  }

  /** The queue screen for the visit's consult (a walk-in's, or a due follow-up's), kept up to
   * date by the events socket and a poll until the specialist takes it. */
  #waitInQueue(answer) {
    this.#show("queue");
    this.#root.querySelector("[data-due]").hidden = true;
    this.#queued(answer);
    this.#listen();
    this.#stopPolling();
    this.#poll = window.setInterval(() => this.#pollQueue(), POLL_MS);
  }

  #queueButtons(again) {
    const section = this.#screens.get("queue");
    section.querySelector("[data-queue-again]").hidden = !again;
    section.querySelector("[data-queue-book]").hidden = !again;
    section.querySelector("[data-action=leave-queue]").hidden = again;
  }

  #listen() {
    if (this.#events) {
      return;
    }
    this.#events = new EventStream({
      onOpen: () => this.#pollQueue(),
      onEvent: (channel, event) => {
        const consult = event && event.consult;
        if (consult && this.#queue && consult.id === this.#queue.consult_id) {
          this.#pollQueue();
        }
      },
    });
    this.#events.start();
  }

  async #pollQueue() {
    if (!this.#visit || !this.#queue || !["queue", "call"].includes(this.#screen)) {
      return;
    }
    try {
      this.#queued(await api(`/api/v1/kiosk/visits/${this.#visit.id}/queue`));
    } catch {
      // the next poll tries again
    }
  }

  #queued(answer) {
    this.#queue = answer;
    this.#consultId = answer.consult_id;
    const number = new Intl.NumberFormat(this.#locale);
    const section = this.#screens.get("queue");
    section.dataset.status = answer.status || "waiting";
    if (answer.status === "accepted" || answer.status === "live") {
      if (this.#screen === "queue") {
        section.querySelector("[data-queue-status]").textContent = this.#msg("queue-accepted");
        this.#startCall(answer.consult_id);
      }
      return;
    }
    if (answer.status === "ended") {
      if (this.#screen === "call" || this.#call) {
        this.#callEnded();
      } else if (this.#screen === "queue") {
        this.#showSummary();
      }
      return;
    }
    if (answer.status === "expired") {
      this.#stopPolling();
      section.querySelector("[data-queue-status]").textContent = this.#msg("queue-expired");
      section.querySelector("[data-queue-position]").textContent = "";
      section.querySelector("[data-queue-wait]").textContent = "";
      this.#queueButtons(true);
      return;
    }
    this.#queueButtons(false);
    const nobody = answer.on_duty === 0;
    section.querySelector("[data-queue-book]").hidden = !nobody;
    section.querySelector("[data-queue-status]").textContent = nobody ? this.#msg("no-one-on-duty") : "";
    section.querySelector("[data-queue-position]").textContent = this.#msg("position", {
      n: number.format(answer.position),
    });
    const known = Number.isFinite(answer.estimated_wait_s);
    section.querySelector("[data-queue-wait]").parentElement.hidden = !known;
    const minutes = Math.ceil(Math.max(0, known ? answer.estimated_wait_s : 0) / 60);
    section.querySelector("[data-queue-wait]").textContent =
      minutes <= 0
        ? this.#msg("wait-soon")
        : minutes === 1
          ? this.#msg("wait-minute")
          : this.#msg("wait-minutes", { n: number.format(minutes) });
  }

  async #leaveQueue() {
    this.#stopPolling();
    try {
      await api(`/api/v1/kiosk/visits/${this.#visit.id}/queue`, { method: "DELETE" });
    } catch {
      // the visit's finish closes it too
    }
    this.#queue = null;
    this.#show("results");
  }

  // The call ------------------------------------------------------------------------------

  async #startCall(consultId) {
    if (this.#call) {
      return;
    }
    this.#show("call");
    const section = this.#screens.get("call");
    const status = section.querySelector("[data-call-status]");
    const { KioskCall } = await import("./kiosk-call.mjs");
    this.#call = new KioskCall({
      root: section,
      consultId,
      say: (key) => {
        status.textContent = this.#msg(`call-${key}`);
        section.dataset.callState = key;
      },
      onEnded: () => this.#callEnded(),
    });
    await this.#call.start();
  }

  async #hangUp() {
    this.#stopPolling();
    if (this.#queue) {
      try {
        await api(`/api/v1/kiosk/visits/${this.#visit.id}/queue`, { method: "DELETE" });
      } catch {
        // finish closes it anyway
      }
    }
    this.#callEnded();
  }

  #callEnded() {
    const call = this.#call;
    this.#call = null;
    call?.stop();
    this.#stopPolling();
    this.#queue = null;
    if (this.#screen === "call" || this.#screen === "queue") {
      this.#showSummary();
    }
  }

  // The summary ------------------------------------------------------------------------------

  async #showSummary() {
    this.#show("summary");
    await this.#loadSummary();
    this.#stopPolling();
    this.#poll = window.setInterval(() => {
      if (this.#screen === "summary") {
        this.#loadSummary();
      }
    }, SUMMARY_POLL_MS);
  }

  async #loadSummary() {
    let summary;
    try {
      summary = await api(`/api/v1/kiosk/visits/${this.#visit.id}/summary`);
    } catch {
      return;
    }
    if (this.#screen !== "summary") {
      return;
    }
    const section = this.#screens.get("summary");
    const advice = (summary.advice || []).filter((a) => a.text);
    const list = section.querySelector("[data-summary-advice]");
    const items = advice.map((a) => {
      const item = document.createElement("li");
      item.textContent = a.text;
      return item;
    });
    if (!items.length) {
      const item = document.createElement("li");
      item.className = "kiosk-muted";
      item.textContent = this.#msg("no-advice");
      items.push(item);
    }
    list.replaceChildren(...items);
    const specialist = summary.specialist
      ? typeof summary.specialist === "string"
        ? summary.specialist
        : summary.specialist.name || ""
      : advice[0]?.author || "";
    section.querySelector("[data-summary-specialist]").textContent = specialist;
    // Nobody to have given advice (no call at this visit): no advice card at all.
    section.querySelector("[data-summary-advice-card]").hidden = !advice.length && !specialist;
    const followUp = summary.follow_up;
    section.querySelector("[data-summary-follow-up-card]").hidden = !followUp;
    if (followUp) {
      section.querySelector("[data-summary-follow-up]").textContent = this.#slotWords(followUp);
    }
    section.querySelector("[data-summary-book]").hidden = Boolean(followUp);
    const takeHome = summary.take_home;
    const card = section.querySelector("[data-summary-take-home]");
    card.hidden = !(takeHome && takeHome.qr_svg);
    if (takeHome && takeHome.qr_svg) {
      const image = section.querySelector("[data-summary-qr]");
      const source = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(takeHome.qr_svg)}`;
      if (image.getAttribute("src") !== source) {
        image.setAttribute("src", source);
      }
      section.querySelector("[data-summary-until]").textContent = takeHome.expires_at
        ? this.#msg("take-home-until", { time: this.#dateTime(takeHome.expires_at) })
        : "";
    }
  }

  #dateTime(iso) {
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) {
      return "";
    }
    return new Intl.DateTimeFormat(this.#locale, { dateStyle: "full", timeStyle: "short" }).format(moment);
  }

  #slotWords(slot) {
    const who = slot.specialist ? ` ${this.#msg("slot-with", { name: slot.specialist })}` : "";
    return `${this.#dateTime(slot.start)}${who}`;
  }

  // Follow-ups ------------------------------------------------------------------------------

  #startBooking() {
    const section = this.#screens.get("specialty");
    for (const choice of section.querySelectorAll("[data-specialty]")) {
      choice.setAttribute("aria-pressed", String(choice.dataset.specialty === this.#specialty));
    }
    this.#show("specialty");
  }

  async #chooseSpecialty(specialty) {
    this.#specialty = specialty;
    await this.#loadSlots("");
  }

  async #loadSlots(note) {
    const status = this.#root.querySelector("[data-slots-status]");
    const list = this.#root.querySelector("[data-slots]");
    status.textContent = note;
    list.replaceChildren();
    this.#show("slots");
    let found;
    try {
      found = await api(
        `/api/v1/kiosk/visits/${this.#visit.id}/slots?specialty=${encodeURIComponent(this.#specialty)}`,
      );
    } catch (error) {
      status.textContent = this.#failure(error);
      return;
    }
    this.#slots = found.slots || [];
    if (!this.#slots.length) {
      status.textContent = note || this.#msg("no-slots");
      return;
    }
    // One heading per day, then that day's times: fewer words to read on each button.
    const day = new Intl.DateTimeFormat(this.#locale, { dateStyle: "full" });
    const time = new Intl.DateTimeFormat(this.#locale, { timeStyle: "short" });
    const days = new Map();
    this.#slots.forEach((slot, index) => {
      const key = day.format(new Date(slot.start));
      if (!days.has(key)) {
        days.set(key, []);
      }
      days.get(key).push([slot, index]);
    });
    list.replaceChildren(
      ...[...days].map(([label, slots]) => {
        const item = document.createElement("li");
        item.className = "kiosk-slot-day";
        const heading = document.createElement("h2");
        heading.textContent = label;
        const times = document.createElement("div");
        times.className = "kiosk-slot-times";
        for (const [slot, index] of slots) {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "kiosk-choice kiosk-slot";
          button.dataset.slotIndex = String(index);
          const when = document.createElement("span");
          when.className = "kiosk-choice-main";
          when.textContent = time.format(new Date(slot.start));
          const who = document.createElement("span");
          who.className = "kiosk-choice-sub";
          who.textContent = slot.specialist ? this.#msg("slot-with", { name: slot.specialist }) : "";
          button.append(when, who);
          times.append(button);
        }
        item.append(heading, times);
        return item;
      }),
    );
  }

  #chooseSlot(index) {
    this.#slot = this.#slots[index] || null;
    if (!this.#slot) {
      return;
    }
    this.#root.querySelector("[data-where-slot]").textContent = this.#slotWords(this.#slot);
    this.#error("booking", "");
    this.#show("where");
  }

  async #book(where) {
    let booked;
    try {
      booked = await api(`/api/v1/kiosk/visits/${this.#visit.id}/follow-ups`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ slot: this.#slot.id, where }),
      });
    } catch (error) {
      if (error.status === 409) {
        await this.#loadSlots(this.#msg("slot-taken"));
      } else {
        this.#error("booking", error.status === 422 ? error.message : this.#failure(error));
      }
      return;
    }
    const section = this.#screens.get("booked");
    section.querySelector("[data-booked]").textContent = this.#slotWords(booked);
    for (const part of section.querySelectorAll("[data-booked-where]")) {
      part.hidden = part.dataset.bookedWhere !== booked.where;
    }
    this.#show("booked");
  }

  async #joinFollowUp() {
    if (!this.#visit || !this.#followUp) {
      return;
    }
    let answer;
    try {
      await api(
        `/api/v1/kiosk/visits/${this.#visit.id}/follow-ups/${this.#followUp.id}/join`,
        { method: "POST" },
      );
      answer = await api(`/api/v1/kiosk/visits/${this.#visit.id}/queue`);
    } catch {
      return;
    }
    this.#waitInQueue(answer);
  }

  // The person's own GP clinic ----------------------------------------------------------------

  async #loadClinics() {
    const status = this.#root.querySelector("[data-clinics-status]");
    const list = this.#root.querySelector("[data-clinics]");
    status.textContent = "";
    this.#error("clinic", "");
    list.replaceChildren();
    this.#show("clinic");
    let clinics;
    try {
      clinics = await api("/api/v1/kiosk/clinics");
    } catch (error) {
      status.textContent = this.#failure(error);
      return;
    }
    if (!clinics.length) {
      status.textContent = this.#msg("no-clinics");
      return;
    }
    list.replaceChildren(
      ...clinics.map((clinic) => {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "kiosk-choice kiosk-slot";
        button.dataset.clinicId = String(clinic.id);
        button.textContent = clinic.name;
        item.append(button);
        return item;
      }),
    );
  }

  async #linkClinic(clinicId, name) {
    let linked;
    try {
      linked = await api(`/api/v1/kiosk/visits/${this.#visit.id}/clinic`, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ clinic_id: clinicId }),
      });
    } catch (error) {
      this.#error("clinic", error.status === 422 ? error.message : this.#failure(error));
      return;
    }
    const text = this.#msg("clinic-linked", { name: linked.clinic ? linked.clinic.name : name });
    this.#root.querySelector("[data-summary-clinic]").textContent = text;
    if (this.#clinicFrom === "summary") {
      this.#showSummary();
    } else {
      this.#show(this.#clinicFrom);
    }
  }

  // Inactivity and the end of a visit ----------------------------------------------------------

  #touched() {
    this.#lastTouch = Date.now();
  }

  #idleCheck() {
    if (this.#leaving) {
      return;
    }
    const overlay = this.#root.querySelector("[data-idle]");
    if (!overlay.hidden) {
      this.#countdown -= 1;
      if (this.#countdown <= 0) {
        this.#finish("reset");
        return;
      }
      this.#showCount();
      this.#sounds.tick();
      return;
    }
    if (PATIENT_SCREENS.has(this.#screen)) {
      this.#lastTouch = Date.now();
      return;
    }
    if (Date.now() - this.#lastTouch >= this.#idleSeconds * 1000) {
      this.#countdown = this.#warnSeconds;
      overlay.hidden = false;
      this.#showCount();
      this.#sounds.tick();
      overlay.querySelector("[data-idle-stay]").focus({ preventScroll: true });
    }
  }

  #showCount() {
    const number = new Intl.NumberFormat(this.#locale);
    const overlay = this.#root.querySelector("[data-idle]");
    overlay.querySelector("[data-idle-text]").textContent = this.#msg("countdown", {
      n: number.format(this.#countdown),
    });
    overlay.querySelector("[data-idle-count]").textContent = number.format(this.#countdown);
  }

  #stillHere() {
    this.#root.querySelector("[data-idle]").hidden = true;
    this.#touched();
    this.#screens.get(this.#screen)?.querySelector(".kiosk-title")?.focus({ preventScroll: true });
  }

  /** Close the visit (finish or reset) and start afresh on a new page. */
  async #finish(how) {
    if (this.#leaving) {
      return;
    }
    this.#leaving = true;
    this.#stopPolling();
    this.#call?.stop();
    this.#call = null;
    this.#events?.stop();
    if (this.#visit) {
      try {
        await api(`/api/v1/kiosk/visits/${this.#visit.id}/finish`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ how }),
        });
      } catch {
        // the next page load closes the visit anyway (close_open)
      }
    }
    this.#leave(FIRST_SCREEN);
  }

  /** Replace this page (never a new history entry), leaving nothing of the person behind. */
  #leave(url) {
    this.#leaving = true;
    window.clearInterval(this.#idleTimer);
    for (const section of this.#screens.values()) {
      section.hidden = true;
    }
    this.#visit = null;
    this.#vitals = {};
    this.#flags = [];
    window.location.replace(url);
  }
}
