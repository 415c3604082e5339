/*
 * The measurements panel: for each measurement, the automatic value, the device's own value
 * ("—" when the file states none) and the reader's value, which starts as the automatic one (else
 * the device's) and which the reader confirms or corrects. Aids, never a diagnosis.
 */
export const MEASUREMENTS = [
  { key: "heart_rate_bpm", label: "Heart rate", unit: "bpm" },
  { key: "rr_ms", label: "RR interval", unit: "ms" },
  { key: "pr_ms", label: "PR interval", unit: "ms" },
  { key: "qrs_ms", label: "QRS duration", unit: "ms" },
  { key: "qt_ms", label: "QT interval", unit: "ms" },
  { key: "qtc_bazett_ms", label: "QTc (Bazett)", unit: "ms" },
  { key: "qtc_fridericia_ms", label: "QTc (Fridericia)", unit: "ms" },
  { key: "qrs_axis_deg", label: "QRS axis", unit: "°" },
  { key: "rhythm", label: "Rhythm", unit: "" },
];

const NOT_MEASURED = "not measured";

/** A value as shown: whole numbers for numbers, the word for the rhythm, "not measured" for null. */
export function shown(value) {
  if (value === null || value === undefined) {
    return NOT_MEASURED;
  }
  return typeof value === "number" ? String(Math.round(value)) : String(value);
}

function cell(tag, text, className) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) {
    node.className = className;
  }
  return node;
}

export class MeasurementsPanel {
  #inputs = new Map();
  #automatic = {};

  /** Fill `table` (a <table> with a <tbody>) and `statements` (a <ul>) from the ECG API's answer. */
  constructor(table, statements, ecg) {
    this.#automatic = ecg.measurements || {};
    const device = ecg.device_measurements || {};
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const { key, label, unit } of MEASUREMENTS) {
      const row = document.createElement("tr");
      row.dataset.measurement = key;
      const heading = cell("th", unit ? `${label} (${unit})` : label);
      heading.scope = "row";
      const input = document.createElement("input");
      input.name = key;
      input.className = "ecg-reader-value";
      input.setAttribute("aria-label", `${label}: your value`);
      if (key === "rhythm") {
        input.setAttribute("list", "ecg-rhythms");
      } else {
        input.inputMode = "decimal";
      }
      const start = this.#automatic[key] ?? device[key];
      input.value = start === null || start === undefined ? "" : shown(start);
      input.addEventListener("input", () => this.#mark(row, key, input.value));
      this.#inputs.set(key, input);
      const yours = document.createElement("td");
      yours.append(input);
      row.append(
        heading,
        cell("td", shown(this.#automatic[key]), "ecg-automatic"),
        cell("td", device[key] === null || device[key] === undefined ? "—" : shown(device[key]), "ecg-device"),
        yours,
      );
      body.append(row);
    }
    statements.replaceChildren(...(device.statements || []).map((text) => cell("li", text)));
    statements.hidden = statements.children.length === 0;
  }

  /** The reader's values by key: numbers, the rhythm word, or null where left empty. */
  readerValues() {
    const values = {};
    for (const [key, input] of this.#inputs) {
      const text = input.value.trim();
      values[key] = text === "" ? null : key === "rhythm" ? text : Number(text.replace(",", "."));
    }
    return values;
  }

  #mark(row, key, text) {
    const automatic = this.#automatic[key];
    const same = automatic !== null && automatic !== undefined && shown(automatic) === text.trim();
    row.classList.toggle("ecg-corrected", !same);
  }
}
