/*
 * <section class="ecg-viewer" data-module="ecg-viewer" data-ecg-url data-svg-url>: the 12-lead
 * ECG on calibrated paper (the server's SVG, 1 user unit = 1 mm, so at zoom 100% one paper
 * millimetre is one CSS millimetre), its layout, speed and gain, zoom, calipers and the
 * measurements panel beside the paper. With data-call (the page framed in a call) it shares
 * its paper, zoom and caliper through ../viewer/call-frame.mjs.
 */
import { apiFetch, ApiError, fetchJson, readJson } from "../core/fetch.mjs";
import { Caliper, describeReading } from "./calipers.mjs";
import { MeasurementsPanel } from "./measurements-panel.mjs";

const SVG_NS = "http://www.w3.org/2000/svg";
const ZOOMS = [0.5, 0.75, 1, 1.5, 2, 3, 4];
const CHOICES = {
  layout: [
    ["3x4", "3×4 + rhythm strip"],
    ["12x1", "12×1"],
  ],
  speed: [
    ["25", "25 mm/s"],
    ["50", "50 mm/s"],
  ],
  gain: [
    ["5", "5 mm/mV"],
    ["10", "10 mm/mV"],
    ["20", "20 mm/mV"],
  ],
};
const LABELS = { layout: "Layout", speed: "Speed", gain: "Gain" };
const DEFAULTS = { layout: "3x4", speed: "25", gain: "10" };

function html(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

/** The paper as an <svg> element, without anything that could run (defence in depth). */
export function parsePaper(text) {
  const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
  const root = parsed.documentElement;
  if (root.namespaceURI !== SVG_NS || root.localName !== "svg") {
    throw new Error("The ECG paper is not an SVG image.");
  }
  for (const unsafe of root.querySelectorAll("script, foreignObject")) {
    unsafe.remove();
  }
  for (const node of [root, ...root.querySelectorAll("*")]) {
    for (const attribute of [...node.attributes]) {
      if (attribute.name.toLowerCase().startsWith("on")) {
        node.removeAttribute(attribute.name);
      }
    }
  }
  return document.importNode(root, true);
}

export default class EcgViewer {
  static moduleName = "ecg-viewer";

  #root;
  #ecgUrl;
  #svgUrl;
  #paper = { ...DEFAULTS };
  #zoom = 1;
  #frame;
  #reading;
  #zoomLabel;
  #svg = null;
  #caliper = null;
  #panel = null;
  #loading = 0;
  #tablePlaces = null;
  #paperShown = false;
  #call = null;

  constructor(root) {
    this.#root = root;
    this.#ecgUrl = root.dataset.ecgUrl;
    this.#svgUrl = root.dataset.svgUrl;
    root.querySelector(".ecg-paper")?.remove();
    this.#build();
    this.#loadPaper();
    this.#loadMeasurements();
    if (root.dataset.call) {
      this.#joinCall(root.dataset.call);
    }
  }

  /** Shared viewing in a call: this view goes to the call page, the leader's comes in. */
  async #joinCall(call) {
    const { CallFrame } = await import("../viewer/call-frame.mjs");
    this.#call = new CallFrame({
      call,
      get: () => this.viewState(),
      apply: (state) => this.applyViewState(state),
      inert: () => [this.#root, document.querySelector(".viewer-series")],
    });
  }

  /** {study, series, kind: "ecg", ecg: {layout, speed, gain, zoom, caliper}}: what a call shares. */
  viewState() {
    const points = this.#paperShown ? this.#caliper?.points() : null;
    const mm = (p) => ({ x: Math.round(p.x * 100) / 100, y: Math.round(p.y * 100) / 100 });
    return {
      study: this.#root.dataset.studyUid,
      series: this.#root.dataset.seriesUid,
      kind: "ecg",
      ecg: {
        ...this.#paper,
        zoom: this.#zoom,
        caliper: points ? { start: mm(points.start), end: mm(points.end) } : null,
      },
    };
  }

  /** Show a shared state: the same paper, zoom and caliper; false while the paper loads. */
  applyViewState(state) {
    const ecg = state.ecg;
    if (!ecg || typeof ecg !== "object") {
      return true;
    }
    let reload = false;
    for (const [name, options] of Object.entries(CHOICES)) {
      const value = String(ecg[name] ?? DEFAULTS[name]);
      if (options.some(([known]) => known === value) && this.#paper[name] !== value) {
        this.#paper[name] = value;
        this.#root.querySelector(`[data-choice="${name}"]`).value = value;
        reload = true;
      }
    }
    if (reload) {
      this.#loadPaper();
    }
    const zoom = Number(ecg.zoom);
    if (zoom >= ZOOMS[0] && zoom <= ZOOMS[ZOOMS.length - 1] && zoom !== this.#zoom) {
      this.#setZoom(zoom);
    }
    if (!this.#paperShown || !this.#caliper) {
      return false;
    }
    const caliper = ecg.caliper;
    const point = (p) => ({ x: Number(p?.x) || 0, y: Number(p?.y) || 0 });
    if (caliper && typeof caliper === "object") {
      this.#caliper.place(point(caliper.start), point(caliper.end));
    } else if (this.#caliper.points()) {
      this.#clearCaliper();
    }
    return true;
  }

  #changed() {
    this.#call?.changed();
  }

  #clearCaliper() {
    this.#caliper?.clear();
    this.#reading.textContent = "Drag on the paper to measure a time and a voltage.";
    this.#changed();
  }

  /** The reader's confirmed or corrected measurements (for the report), once loaded. */
  readerValues() {
    return this.#panel ? this.#panel.readerValues() : null;
  }

  #build() {
    const toolbar = html("div", { class: "ecg-toolbar", role: "toolbar", "aria-label": "ECG paper" });
    for (const [name, options] of Object.entries(CHOICES)) {
      const select = html("select", { name, class: "ecg-choice", "data-choice": name });
      for (const [value, label] of options) {
        const option = html("option", { value }, label);
        option.selected = value === this.#paper[name];
        select.append(option);
      }
      select.addEventListener("change", () => {
        this.#paper[name] = select.value;
        this.#loadPaper();
      });
      toolbar.append(html("label", { class: "ecg-control" }, `${LABELS[name]} `, select));
    }
    const zoomOut = html("button", { type: "button", class: "button button-secondary", "data-action": "zoom-out", "aria-label": "Zoom out" }, "−");
    const zoomIn = html("button", { type: "button", class: "button button-secondary", "data-action": "zoom-in", "aria-label": "Zoom in" }, "+");
    const actual = html("button", { type: "button", class: "button button-secondary", "data-action": "zoom-reset" }, "Actual size");
    this.#zoomLabel = html("span", { class: "ecg-zoom", "aria-live": "polite" }, "100%");
    zoomOut.addEventListener("click", () => this.#stepZoom(-1));
    zoomIn.addEventListener("click", () => this.#stepZoom(1));
    actual.addEventListener("click", () => this.#setZoom(1));
    const clear = html("button", { type: "button", class: "button button-secondary", "data-action": "clear-caliper" }, "Clear caliper");
    clear.addEventListener("click", () => this.#clearCaliper());
    const print = html("button", { type: "button", class: "button button-secondary", "data-action": "print" }, "Print");
    print.addEventListener("click", () => window.print());
    toolbar.append(
      html("span", { class: "ecg-control" }, zoomOut, this.#zoomLabel, zoomIn, actual),
      clear,
      print,
    );

    this.#frame = html("div", {
      class: "ecg-paper-frame",
      tabindex: "0",
      "aria-label": "ECG paper. Drag, or use the arrow keys, to measure with the caliper.",
    });
    this.#frame.append(html("p", { class: "hint" }, "Loading the ECG…"));
    this.#frame.addEventListener("keydown", (event) => this.#key(event));
    this.#reading = html(
      "output",
      { class: "ecg-caliper-reading", "aria-live": "polite" },
      "Drag on the paper to measure a time and a voltage.",
    );

    const table = html(
      "table",
      { class: "ecg-measurements-table" },
      html("caption", {}, "Measurements"),
      html(
        "thead",
        {},
        html(
          "tr",
          {},
          html("th", { scope: "col" }, "Measurement"),
          html("th", { scope: "col" }, "Automatic"),
          html("th", { scope: "col" }, "Device"),
          html("th", { scope: "col" }, "Yours"),
        ),
      ),
      html("tbody", {}),
    );
    const rhythms = html("datalist", { id: "ecg-rhythms" }, html("option", { value: "regular" }), html("option", { value: "irregular" }));
    const statements = html("ul", { class: "ecg-statements", "aria-label": "The device's interpretation" });
    statements.hidden = true;
    const measurements = html(
      "aside",
      { class: "ecg-measurements", "aria-label": "Measurements" },
      html(
        "p",
        { class: "hint" },
        "Automatic measurements are aids: confirm or correct each one. They are not a diagnosis.",
      ),
      table,
      rhythms,
      statements,
    );
    this.#root.append(toolbar, this.#frame, this.#reading, measurements);
    this.#tablePlaces = { table, statements };
  }


  async #loadPaper() {
    const ticket = ++this.#loading;
    this.#paperShown = false;
    const url = `${this.#svgUrl}?${new URLSearchParams(this.#paper)}`;
    let text;
    try {
      const response = await apiFetch(url, { headers: { Accept: "image/svg+xml" } });
      if (!response.ok) {
        const body = await readJson(response);
        throw new ApiError(response.status, body && body.error);
      }
      text = await response.text();
    } catch (error) {
      if (ticket === this.#loading) {
        this.#showError(this.#frame, error);
      }
      return;
    }
    if (ticket !== this.#loading) {
      return;
    }
    const svg = parsePaper(text);
    this.#svg = svg;
    this.#frame.replaceChildren(svg);
    this.#caliper = new Caliper(svg, () => this.#paperScale(), (reading) => {
      this.#reading.textContent = describeReading(reading);
      this.#changed();
    });
    this.#reading.textContent = "Drag on the paper to measure a time and a voltage.";
    this.#applyZoom();
    this.#root.dataset.paper = `${this.#paper.layout} ${this.#paper.speed} ${this.#paper.gain}`;
    this.#paperShown = true;
    this.#changed();
  }

  async #loadMeasurements() {
    try {
      const ecg = await fetchJson(this.#ecgUrl);
      this.#panel = new MeasurementsPanel(this.#tablePlaces.table, this.#tablePlaces.statements, ecg);
      this.#root.dataset.measurementsLoaded = "";
    } catch (error) {
      this.#showError(this.#tablePlaces.table.tBodies[0], error);
    }
  }

  #paperScale() {
    return { speed: Number(this.#paper.speed), gain: Number(this.#paper.gain) };
  }

  #stepZoom(direction) {
    const index = ZOOMS.findIndex((zoom) => zoom >= this.#zoom - 1e-9);
    const next = Math.min(ZOOMS.length - 1, Math.max(0, (index < 0 ? ZOOMS.length - 1 : index) + direction));
    this.#setZoom(ZOOMS[next]);
  }

  #setZoom(zoom) {
    this.#zoom = zoom;
    this.#applyZoom();
    this.#changed();
  }

  /** Width and height in CSS mm: the viewBox (in paper mm) times the zoom. */
  #applyZoom() {
    this.#zoomLabel.textContent = `${Math.round(this.#zoom * 100)}%`;
    if (!this.#svg) {
      return;
    }
    const box = this.#svg.viewBox.baseVal;
    this.#svg.setAttribute("width", `${box.width * this.#zoom}mm`);
    this.#svg.setAttribute("height", `${box.height * this.#zoom}mm`);
  }

  #key(event) {
    const step = event.shiftKey ? 0.2 : 1;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    const move = moves[event.key];
    if (move && this.#caliper) {
      event.preventDefault();
      this.#caliper.nudge(...move);
    } else if (event.key === "+" || event.key === "=") {
      this.#stepZoom(1);
    } else if (event.key === "-") {
      this.#stepZoom(-1);
    } else if (event.key === "Escape" && this.#caliper) {
      this.#clearCaliper();
    }
  }

  #showError(place, error) {
    const message = error instanceof ApiError ? error.message : "The ECG could not be shown.";
    const alert = html("p", { class: "alert alert-error", role: "alert" }, message);
    if (place.tagName === "TBODY") {
      place.replaceChildren(html("tr", {}, html("td", { colspan: "4" }, alert)));
    } else {
      place.replaceChildren(alert);
    }
  }
}
