/*
 * <section data-module="kiosk-vitals" data-person-id data-locale data-msg-*>, on the call page of
 * a consult that a kiosk asked for: the vitals the person measured at this visit (the newest
 * reading) with their flags, and their blood-pressure trend (bp-chart.mjs, as on the kiosk's
 * "Welcome back" screen) with a table alternative. Fetched again every 15 s during the call, so
 * a measurement taken while waiting shows up.
 */
import { fetchJson } from "../core/fetch.mjs";
import { drawBpChart, fillBpTable, longDate } from "./bp-chart.mjs";

const REFRESH_MS = 15_000;
const FIELDS = ["bp", "heart_rate", "spo2", "glucose_mmol_l", "temperature_c", "weight_kg"];

export default class KioskVitals {
  static moduleName = "kiosk-vitals";

  #root;
  #person;
  #locale;

  constructor(root) {
    this.#root = root;
    this.#person = root.dataset.personId;
    this.#locale = root.dataset.locale || "en-GB";
    const toggle = root.querySelector("[data-chart-toggle]");
    toggle.addEventListener("click", () => {
      const wrap = root.querySelector("[data-bp-table-wrap]");
      const showTable = wrap.hidden;
      wrap.hidden = !showTable;
      root.querySelector("[data-bp-chart]").hidden = showTable;
      toggle.setAttribute("aria-expanded", String(showTable));
      toggle.textContent = showTable ? root.dataset.msgShowChart : root.dataset.msgShowTable;
    });
    this.#load();
    window.setInterval(() => this.#load(), REFRESH_MS);
  }

  async #load() {
    let found;
    try {
      found = await fetchJson(`/api/v1/kiosk/people/${encodeURIComponent(this.#person)}/vitals`);
    } catch (error) {
      this.#status(error.message);
      return;
    }
    const readings = found.readings || [];
    const latest = readings[readings.length - 1];
    this.#status(latest ? "" : this.#root.dataset.msgNone);
    this.#latest(latest);
    const chart = this.#root.querySelector("[data-bp-chart]");
    const summary = drawBpChart(chart, readings, {
      locale: this.#locale,
      summary: this.#root.dataset.msgSummary,
    });
    this.#root.querySelector("[data-bp-history]").hidden = !summary;
    fillBpTable(this.#root.querySelector("[data-bp-table]"), readings, this.#locale);
    this.#root.dataset.readings = String(readings.length);
  }

  #status(text) {
    const status = this.#root.querySelector("[data-vitals-status]");
    status.textContent = text || "";
    status.hidden = !text;
  }

  #latest(reading) {
    const number = new Intl.NumberFormat(this.#locale, { maximumFractionDigits: 1 });
    const list = this.#root.querySelector("[data-vitals-latest]");
    const when = this.#root.querySelector("[data-vitals-when]");
    when.textContent = reading ? longDate(reading.taken_at, this.#locale) : "";
    for (const key of FIELDS) {
      const row = list.querySelector(`[data-vital="${key}"]`);
      let text = "";
      if (reading && key === "bp" && Number.isFinite(reading.systolic)) {
        text = `${number.format(reading.systolic)}/${number.format(reading.diastolic)}`;
      } else if (reading && Number.isFinite(reading[key])) {
        text = number.format(reading[key]);
        if (key === "glucose_mmol_l" && typeof reading.glucose_fasting === "boolean") {
          const words = reading.glucose_fasting ? this.#root.dataset.msgFasting : this.#root.dataset.msgNotFasting;
          text += ` (${words})`;
        }
      }
      row.hidden = !text;
      row.querySelector("[data-value]").textContent = text;
    }
    const flags = this.#root.querySelector("[data-vitals-flags]");
    flags.replaceChildren(
      ...((reading && reading.flags) || []).map((code) => {
        const item = document.createElement("li");
        item.className = "badge kiosk-vitals-flag";
        item.dataset.code = code;
        item.textContent = String(code).replaceAll("_", " ");
        return item;
      }),
    );
    flags.hidden = !flags.children.length;
  }
}
