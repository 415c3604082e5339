/*
 * The image viewer component (data-module="viewer"): a series' frames on a canvas, windowed in
 * the browser by pipeline.mjs (a drag needs no request), with zoom/pan/rotate/flip/invert, frame
 * scroll and cine, length and angle measurements, overlay text and keyboard shortcuts.
 * The root carries data-series-url (the series' DICOMweb URL); thumbnails of the page's series
 * strip switch series in place. With data-call (the page framed in a call) it shares its view
 * through call-frame.mjs and shared-state.mjs.
 */
import { FrameStore, nearest } from "./frames.mjs";
import { label as measurementLabel, pointsOf } from "./measure.mjs";
import {
  Window,
  defaultVoi,
  fileWindows,
  frameAttributes,
  fullRange,
  grayscale,
  loadGrayscaleLuts,
  loadPalette,
  modalityValues,
  palette,
  rgba,
  scaled,
} from "./pipeline.mjs";
import { presetsFor } from "./presets.mjs";
import { calibration, colourOf, stackOf } from "./series.mjs";
import { View, draw, toCanvas, toImage } from "./view.mjs";

const SVG = "http://www.w3.org/2000/svg";
const PREFETCH_ALL = 400; // a series of at most this many frames is prefetched whole
const PREFETCH_AROUND = 24; // else this many frames around the current one
const WHEEL_STEP = 100; // wheel delta (pixels) per frame: one notch of a mouse wheel
const TOOLS = { w: "window", p: "pan", z: "zoom", l: "length", a: "angle" };

export default class Viewer {
  static moduleName = "viewer";

  constructor(root) {
    this.root = root;
    this.part = (name) => root.querySelector(`[data-viewer-${name}]`);
    this.canvas = this.part("canvas");
    this.marks = this.part("marks");
    this.stage = this.part("stage");
    this.view = new View();
    this.tool = "window";
    this.window = null; // null: the default VOI of each frame
    this.presetIndex = 0;
    this.measurements = new Map(); // frame key -> [{kind, points}]
    this.drawing = null;
    this.pointers = new Map();
    this.wheel = 0;
    this.playing = null;
    this.image = document.createElement("canvas"); // the current frame at image size
    this.listen();
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(this.stage);
    this.open(root.dataset.seriesUrl);
    if (root.dataset.call) {
      this.joinCall(root.dataset.call);
    }
  }

  /** Shared viewing in a call: this view goes to the call page, the leader's comes in. */
  async joinCall(call) {
    const [{ CallFrame }, shared] = await Promise.all([import("./call-frame.mjs"), import("./shared-state.mjs")]);
    this.call = new CallFrame({
      call,
      get: () => shared.viewState(this),
      apply: (state) => shared.applyViewState(this, state),
      switchSeries: (uid) => shared.switchSeries(this, uid),
      inert: () => [this.root, document.querySelector(".viewer-series")],
    });
  }

  // Loading ---------------------------------------------------------------------------------

  async open(seriesUrl) {
    this.stop();
    this.store?.close();
    this.seriesUrl = seriesUrl;
    this.generation = (this.generation ?? 0) + 1;
    const generation = this.generation;
    this.stack = [];
    this.entry = null;
    this.levels = null;
    this.luts = new Map();
    this.loaded = 0;
    this.store = new FrameStore({ onLoaded: () => this.progress(generation) });
    this.message("");
    this.text("frame", "Loading…");
    let metadata;
    try {
      const response = await fetch(`${seriesUrl}/metadata`, {
        credentials: "same-origin",
        headers: { Accept: "application/dicom+json" },
      });
      if (!response.ok) {
        throw new Error(`the series metadata answered HTTP ${response.status}`);
      }
      metadata = await response.json();
    } catch (error) {
      this.message(`This series could not be loaded: ${error.message}`);
      return;
    }
    if (generation !== this.generation) {
      return;
    }
    this.stack = stackOf(metadata, seriesUrl);
    if (!this.stack.length) {
      this.text("frame", "");
      this.message("This series has no images to show.");
      return;
    }
    const slider = this.part("slider");
    slider.max = String(this.stack.length);
    this.part("frames").hidden = this.stack.length < 2;
    const rate = this.stack[0].instance.frameRate;
    if (rate > 0 && rate <= 60) {
      this.part("fps").value = String(Math.round(rate));
    }
    await this.show(0);
    this.fillPresets();
  }

  progress(generation) {
    if (generation === this.generation) {
      this.loaded += 1;
      this.updateText();
    }
  }

  /** Show frame `index` of the stack: fetched first if needed, then the rest prefetched. */
  async show(index) {
    const entry = this.stack[index];
    if (!entry) {
      return;
    }
    this.index = index;
    this.part("slider").value = String(index + 1);
    this.updateText();
    const limit = this.stack.length <= PREFETCH_ALL ? this.stack.length : PREFETCH_AROUND;
    const generation = this.generation;
    let samples;
    try {
      samples = await this.store.get(entry);
    } catch (error) {
      if (error.name !== "AbortError" && this.index === index) {
        this.message(`Frame ${index + 1} could not be loaded: ${error.message}`);
      }
      return;
    }
    if (generation !== this.generation || this.index !== index) {
      return;
    }
    let frame;
    try {
      frame = await this.prepare(entry, samples);
    } catch (error) {
      this.message(`Frame ${index + 1} cannot be shown: ${error.message}`);
      return;
    }
    if (generation !== this.generation || this.index !== index) {
      return;
    }
    this.entry = entry;
    this.frame = frame;
    const { columns, rows } = entry.instance;
    if (this.image.width !== columns || this.image.height !== rows) {
      this.image.width = columns;
      this.image.height = rows;
    }
    this.message("");
    this.render();
    this.store.prefetch(nearest(this.stack, index, limit - 1));
  }

  /** Modality values (grayscale) or colour levels of a frame, and what it is calibrated in. */
  async prepare(entry, samples) {
    const { instance } = entry;
    if (!instance.supported) {
      throw new Error(`Photometric Interpretation ${instance.photometric || "(none)"} is not supported`);
    }
    const colour = colourOf(instance);
    const frame = { entry, colour, calibration: calibration(instance.ds, entry.frame - 1) };
    if (colour === "grayscale") {
      const attributes = frameAttributes(instance.ds, entry.frame - 1);
      const luts = await this.lutsOf(attributes);
      frame.attributes = attributes;
      frame.luts = luts;
      frame.values = modalityValues(samples, attributes, luts);
      frame.voi = defaultVoi(frame.values, attributes, luts);
    } else if (colour === "palette") {
      frame.levels = palette(samples, await this.lutsOf(instance.ds, "palette"));
    } else {
      // RGB, or YBR converted to 8-bit RGB by the server's decoder or by pixels.mjs.
      frame.levels = scaled(samples, instance.bitsStored);
    }
    return frame;
  }

  /** Loaded lookup tables, shared by the frames that name the same ones. */
  async lutsOf(attributes, kind = "grayscale") {
    const key =
      kind === "palette"
        ? `palette:${attributes["00080018"]?.Value?.[0]}`
        : JSON.stringify([attributes["00283000"] ?? null, attributes["00283010"] ?? null]);
    if (!this.luts.has(key)) {
      this.luts.set(key, kind === "palette" ? loadPalette(attributes) : loadGrayscaleLuts(attributes));
    }
    return this.luts.get(key);
  }

  // Drawing ---------------------------------------------------------------------------------

  /** Run the pipeline for the current frame and window, then draw. */
  render() {
    const frame = this.frame;
    if (!frame) {
      return;
    }
    const { instance } = frame.entry;
    let levels = frame.levels;
    let channels = 3;
    if (frame.colour === "grayscale") {
      levels = grayscale(frame.values, frame.attributes, frame.luts, this.window, instance.photometric);
      channels = 1;
    }
    const context = this.image.getContext("2d");
    const pixels = context.createImageData(instance.columns, instance.rows);
    rgba(levels, channels, this.view.invert, pixels.data);
    context.putImageData(pixels, 0, 0);
    this.draw();
  }

  matrix() {
    const { instance } = this.frame.entry;
    return this.view.matrix(this.canvas.width, this.canvas.height, instance.columns, instance.rows);
  }

  /** Draw the current frame with the view transform, then the measurements. */
  draw() {
    if (!this.frame) {
      return;
    }
    const { instance } = this.frame.entry;
    if (this.view.fitted) {
      this.view.zoom = this.view.fitZoom(this.canvas.width, this.canvas.height, instance.columns, instance.rows);
      this.view.panX = 0;
      this.view.panY = 0;
    }
    draw(this.canvas, this.image, this.matrix(), this.view.zoom);
    this.drawMarks();
    this.updateText();
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(this.canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(this.canvas.clientHeight * ratio));
    if (width !== this.canvas.width || height !== this.canvas.height) {
      this.canvas.width = width;
      this.canvas.height = height;
      this.marks.setAttribute("viewBox", `0 0 ${width} ${height}`);
      this.draw();
    }
  }

  drawMarks() {
    this.marks.replaceChildren();
    const list = this.part("measurements");
    list.replaceChildren();
    const m = this.matrix();
    const all = [...(this.measurements.get(this.frameKey()) ?? [])];
    if (this.drawing) {
      all.push(this.drawing);
    }
    all.forEach((measurement, number) => {
      const points = measurement.points.map((p) => toCanvas(m, p));
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", points.map((p) => `${p.x},${p.y}`).join(" "));
      line.setAttribute("class", "viewer-mark");
      this.marks.append(line);
      const text = measurementLabel(measurement, this.frame.calibration);
      if (!text) {
        return;
      }
      const at = points[measurement.kind === "angle" ? 1 : points.length - 1];
      const caption = document.createElementNS(SVG, "text");
      caption.setAttribute("x", String(at.x + 8));
      caption.setAttribute("y", String(at.y - 8));
      caption.setAttribute("class", "viewer-mark-label");
      caption.textContent = text;
      this.marks.append(caption);
      if (measurement !== this.drawing) {
        const item = document.createElement("li");
        const name = measurement.kind === "angle" ? "Angle" : "Length";
        item.textContent = `${name} ${number + 1}: ${text}`;
        list.append(item);
      }
    });
  }

  // Text ------------------------------------------------------------------------------------

  text(name, value) {
    const element = this.root.querySelector(`[data-viewer-${name}-text]`);
    if (element && element.textContent !== value) {
      element.textContent = value;
    }
  }

  windowText() {
    const frame = this.frame;
    if (!frame) {
      return "";
    }
    if (frame.colour !== "grayscale") {
      return "Colour";
    }
    if (!this.window && frame.voi.kind === "lut") {
      return "VOI LUT (file)";
    }
    const window = this.window ?? frame.voi.window;
    return `W ${formatNumber(window.width)} L ${formatNumber(window.center)}`;
  }

  /** Overlay and status text; the frame named is the one drawn, not one still loading. */
  updateText() {
    this.call?.changed();
    const total = this.stack.length;
    if (!total) {
      return;
    }
    const shown = this.entry;
    if (shown) {
      const own = shown.instance.frames > 1 && shown.instance.frames < total;
      const suffix = own ? ` (instance frame ${shown.frame})` : "";
      this.text("frame", `Frame ${shown.index + 1} of ${total}${suffix}`);
    }
    const cached = this.stack.filter((e) => this.store.has(e)).length;
    const waiting = shown && shown.index !== this.index ? `Loading frame ${this.index + 1}. ` : "";
    this.text("load", cached >= total && !waiting ? "" : `${waiting}Loaded ${cached} of ${total} frames`);
    this.text("window", this.windowText());
    this.text("zoom", this.frame ? `Zoom ${Math.round(this.view.zoom * 100)}%` : "");
    clearTimeout(this.statusTimer);
    this.statusTimer = setTimeout(() => {
      if (this.entry) {
        const status = this.part("status");
        status.textContent = `Frame ${this.entry.index + 1} of ${total}. ${this.windowText()}.`;
      }
    }, 400);
  }

  message(text) {
    const element = this.part("message");
    element.textContent = text;
    element.hidden = !text;
  }

  // Windows and presets ---------------------------------------------------------------------

  fillPresets() {
    const select = this.part("presets");
    const frame = this.frame;
    const options = [["Default", null]];
    if (frame?.colour === "grayscale") {
      for (const { window, name } of fileWindows(frame.attributes)) {
        options.push([`${name} (${formatNumber(window.center)}/${formatNumber(window.width)})`, window]);
      }
      for (const [name, center, width] of presetsFor(frame.entry.instance.modality)) {
        options.push([`${name} (${center}/${width})`, new Window(center, width)]);
      }
      options.push(["Full range", "full"]);
    }
    this.presets = options;
    const custom = document.createElement("option");
    custom.value = "";
    custom.disabled = true;
    custom.textContent = "Custom (dragged)";
    select.replaceChildren(
      ...options.map(([name], index) => {
        const option = document.createElement("option");
        option.value = String(index);
        option.textContent = name;
        return option;
      }),
      custom,
    );
    select.disabled = options.length < 2;
  }

  choosePreset(index) {
    const preset = this.presets?.[index];
    if (!preset || !this.frame || this.frame.colour !== "grayscale") {
      return;
    }
    const [, window] = preset;
    if (window === "full") {
      this.window = fullRange(this.frame.values);
    } else {
      this.window = window;
    }
    this.part("presets").value = String(index);
    this.render();
  }

  /** Change the window by a drag of (dx, dy) canvas pixels: right widens, down raises the level. */
  dragWindow(start, dx, dy) {
    const step = Math.max(start.width / 256, 0.01);
    const width = Math.max(1, roundTo(start.width + dx * step, step));
    const center = roundTo(start.center + dy * step, step);
    this.window = new Window(center, width, start.fn === "sigmoid" ? "sigmoid" : "linear");
    this.part("presets").value = "";
    this.scheduleRender();
  }

  scheduleRender() {
    if (!this.renderQueued) {
      this.renderQueued = true;
      requestAnimationFrame(() => {
        this.renderQueued = false;
        this.render();
      });
    }
  }

  currentWindow() {
    if (this.window) {
      return this.window;
    }
    const voi = this.frame.voi;
    if (voi.kind === "window") {
      return voi.window;
    }
    return fullRange(this.frame.values);
  }

  // Interaction -----------------------------------------------------------------------------

  listen() {
    this.root.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (!button || !this.root.contains(button)) {
        return;
      }
      if (button.dataset.tool) {
        this.setTool(button.dataset.tool);
      } else if (button.dataset.action) {
        this.act(button.dataset.action);
      }
    });
    this.part("presets").addEventListener("change", (event) => {
      const index = Number(event.target.value);
      if (index === 0) {
        this.window = null;
        this.render();
      } else {
        this.choosePreset(index);
      }
    });
    this.part("slider").addEventListener("input", (event) => this.show(Number(event.target.value) - 1));
    this.part("fps").addEventListener("change", () => {
      if (this.playing) {
        this.stop();
        this.play();
      }
    });
    const canvas = this.canvas;
    canvas.addEventListener("pointerdown", (event) => this.pointerDown(event));
    canvas.addEventListener("pointermove", (event) => this.pointerMove(event));
    canvas.addEventListener("pointerup", (event) => this.pointerUp(event));
    canvas.addEventListener("pointercancel", (event) => this.pointerUp(event, true));
    canvas.addEventListener("contextmenu", (event) => event.preventDefault());
    this.stage.addEventListener("wheel", (event) => this.onWheel(event), { passive: false });
    document.addEventListener("keydown", (event) => this.onKey(event));
    document.addEventListener("click", (event) => this.onSeriesLink(event));
  }

  setTool(tool) {
    this.tool = tool;
    this.drawing = null;
    for (const button of this.root.querySelectorAll("[data-tool]")) {
      button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
    }
    this.canvas.dataset.tool = tool;
    this.draw();
  }

  act(action) {
    const view = this.view;
    const toggles = { "flip-h": "flipH", "flip-v": "flipV", invert: "invert" };
    if (action in toggles) {
      view[toggles[action]] = !view[toggles[action]];
      this.root.querySelector(`[data-action="${action}"]`).setAttribute("aria-pressed", String(view[toggles[action]]));
      if (action === "invert") {
        this.render();
        return;
      }
    } else if (action === "zoom-in" || action === "zoom-out") {
      this.zoomBy(action === "zoom-in" ? 1.25 : 0.8, this.centre());
      return;
    } else if (action === "fit") {
      view.fitted = true;
    } else if (action === "actual-size") {
      view.fitted = false;
      view.zoom = 1;
      view.panX = 0;
      view.panY = 0;
    } else if (action === "rotate") {
      view.rotation = (view.rotation + 1) % 4;
    } else if (action === "reset") {
      view.reset();
      this.window = null;
      this.part("presets").value = "0";
      for (const name of Object.keys(toggles)) {
        this.root.querySelector(`[data-action="${name}"]`).setAttribute("aria-pressed", "false");
      }
      this.render();
      return;
    } else if (action === "clear") {
      this.measurements.delete(this.frameKey());
      this.drawing = null;
    } else if (action === "cine") {
      if (this.playing) {
        this.stop();
      } else {
        this.play();
      }
      return;
    } else if (action === "help" || action === "help-close") {
      this.toggleHelp(action === "help" ? undefined : false);
      return;
    }
    this.draw();
  }

  toggleHelp(open) {
    const help = this.part("help");
    const show = open ?? help.hidden;
    help.hidden = !show;
    const button = this.root.querySelector('[data-action="help"]');
    button.setAttribute("aria-expanded", String(show));
    (show ? help.querySelector("button") : button).focus();
  }

  centre() {
    return { x: this.canvas.width / 2, y: this.canvas.height / 2 };
  }

  zoomBy(factor, canvasPoint) {
    if (!this.frame) {
      return;
    }
    const { instance } = this.frame.entry;
    const imagePoint = toImage(this.matrix(), canvasPoint);
    this.view.fitted = false;
    this.view.zoom = Math.min(32, Math.max(0.05, this.view.zoom * factor));
    this.view.anchor(imagePoint, canvasPoint, this.canvas.width, this.canvas.height, instance.columns, instance.rows);
    this.draw();
  }

  canvasPoint(event) {
    const box = this.canvas.getBoundingClientRect();
    const ratio = this.canvas.width / Math.max(1, box.width);
    return { x: (event.clientX - box.left) * ratio, y: (event.clientY - box.top) * ratio };
  }

  pointerDown(event) {
    if (!this.frame) {
      return;
    }
    this.canvas.setPointerCapture(event.pointerId);
    this.canvas.focus({ preventScroll: true });
    const point = this.canvasPoint(event);
    this.pointers.set(event.pointerId, point);
    if (this.pointers.size === 2) {
      // Two fingers: pinch and pan; whatever the first finger began is dropped.
      this.drawing = this.drawing?.kind === "angle" && this.drawing.points.length > 2 ? this.drawing : null;
      const [p, q] = [...this.pointers.values()];
      this.gesture = {
        kind: "pinch",
        distance: Math.hypot(p.x - q.x, p.y - q.y) || 1,
        zoom: this.view.zoom,
        image: toImage(this.matrix(), midpoint(p, q)),
      };
      return;
    }
    if (this.pointers.size > 2) {
      return;
    }
    const pan = event.button === 1 || (event.button === 0 && event.shiftKey);
    const tool = pan ? "pan" : event.button === 2 ? "zoom" : this.tool;
    const image = toImage(this.matrix(), point);
    this.gesture = { kind: tool, start: point, last: point, window: this.frame.colour === "grayscale" ? this.currentWindow() : null, zoom: this.view.zoom, image };
    if (tool === "length") {
      this.drawing = { kind: "length", points: [image, image] };
    } else if (tool === "angle") {
      if (this.drawing?.kind === "angle" && this.drawing.points.length === 2) {
        this.drawing.points.push(image);
      } else {
        this.drawing = { kind: "angle", points: [image, image] };
      }
    }
    event.preventDefault();
  }

  pointerMove(event) {
    if (!this.pointers.has(event.pointerId) || !this.gesture) {
      return;
    }
    const point = this.canvasPoint(event);
    this.pointers.set(event.pointerId, point);
    const gesture = this.gesture;
    const { instance } = this.frame.entry;
    if (gesture.kind === "pinch") {
      const [p, q] = [...this.pointers.values()];
      this.view.fitted = false;
      this.view.zoom = Math.min(32, Math.max(0.05, (gesture.zoom * Math.hypot(p.x - q.x, p.y - q.y)) / gesture.distance));
      this.view.anchor(gesture.image, midpoint(p, q), this.canvas.width, this.canvas.height, instance.columns, instance.rows);
      this.draw();
      return;
    }
    const dx = point.x - gesture.start.x;
    const dy = point.y - gesture.start.y;
    if (gesture.kind === "window" && gesture.window) {
      this.dragWindow(gesture.window, dx, dy);
    } else if (gesture.kind === "pan") {
      this.view.fitted = false;
      this.view.panX += point.x - gesture.last.x;
      this.view.panY += point.y - gesture.last.y;
      this.draw();
    } else if (gesture.kind === "zoom") {
      this.view.fitted = false;
      this.view.zoom = Math.min(32, Math.max(0.05, gesture.zoom * Math.exp(-dy / 200)));
      this.view.anchor(gesture.image, gesture.start, this.canvas.width, this.canvas.height, instance.columns, instance.rows);
      this.draw();
    } else if (this.drawing) {
      this.drawing.points[this.drawing.points.length - 1] = toImage(this.matrix(), point);
      this.drawMarks();
    }
    gesture.last = point;
  }

  pointerUp(event, cancelled = false) {
    if (!this.pointers.delete(event.pointerId)) {
      return;
    }
    if (this.pointers.size > 0) {
      return; // the gesture ends with its last finger
    }
    const gesture = this.gesture;
    this.gesture = null;
    const drawing = this.drawing;
    if (cancelled || !drawing || !gesture || (gesture.kind !== "length" && gesture.kind !== "angle")) {
      this.updateText();
      return;
    }
    const [a, b] = drawing.points.slice(-2);
    const moved = Math.hypot(a.x - b.x, a.y - b.y) > 0;
    if (drawing.points.length === pointsOf(drawing.kind) && (moved || drawing.kind === "angle")) {
      const key = this.frameKey();
      this.measurements.set(key, [...(this.measurements.get(key) ?? []), drawing]);
      this.drawing = null;
    } else if (!moved && drawing.points.length === 2 && drawing.kind === "length") {
      this.drawing = null;
    }
    this.drawMarks();
  }

  onWheel(event) {
    if (!this.frame) {
      return;
    }
    event.preventDefault();
    const delta = event.deltaY * (event.deltaMode === 1 ? 40 : event.deltaMode === 2 ? 800 : 1);
    if (event.ctrlKey || event.metaKey) {
      this.zoomBy(Math.exp(-delta / 500), this.canvasPoint(event));
      return;
    }
    this.wheel += delta;
    const steps = Math.trunc(this.wheel / WHEEL_STEP);
    if (steps) {
      this.wheel -= steps * WHEEL_STEP;
      this.step(steps);
    }
  }

  step(by) {
    const target = Math.min(this.stack.length - 1, Math.max(0, this.index + by));
    if (target !== this.index) {
      this.show(target);
    }
  }

  onKey(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    const target = event.target;
    if (target.closest?.("input, select, textarea, [contenteditable]") && target !== this.part("slider")) {
      return;
    }
    if (target === this.part("slider") && event.key.startsWith("Arrow")) {
      return; // the slider moves itself
    }
    const key = event.key;
    const frames = {
      ArrowUp: -1,
      ArrowLeft: -1,
      ArrowDown: 1,
      ArrowRight: 1,
      PageUp: -10,
      PageDown: 10,
    };
    const actions = { "+": "zoom-in", "=": "zoom-in", "-": "zoom-out", f: "fit", o: "actual-size", r: "rotate", h: "flip-h", v: "flip-v", i: "invert", x: "reset" };
    const lower = key.length === 1 ? key.toLowerCase() : key;
    if (key in frames) {
      this.step(frames[key]);
    } else if (key === "Home" || key === "End") {
      this.show(key === "Home" ? 0 : this.stack.length - 1);
    } else if (key === " " && target.tagName !== "BUTTON") {
      this.act("cine");
    } else if (key === "?") {
      this.toggleHelp();
    } else if (key === "Escape") {
      if (!this.part("help").hidden) {
        this.toggleHelp(false);
      } else {
        this.drawing = null;
        this.draw();
      }
    } else if (key === "Delete" || key === "Backspace") {
      this.act("clear");
    } else if (key === "[" || key === "]") {
      this.nextSeries(key === "]" ? 1 : -1);
    } else if (/^[1-9]$/.test(key)) {
      this.choosePreset(Number(key));
    } else if (lower in TOOLS) {
      this.setTool(TOOLS[lower]);
    } else if (lower in actions) {
      this.act(actions[lower]);
    } else {
      return;
    }
    event.preventDefault();
  }

  play() {
    if (this.stack.length < 2) {
      return;
    }
    const button = this.root.querySelector('[data-action="cine"]');
    button.textContent = "Pause";
    button.setAttribute("aria-pressed", "true");
    const tick = () => {
      const fps = Math.min(60, Math.max(1, Number(this.part("fps").value) || 10));
      this.playing = setTimeout(tick, 1000 / fps);
      const next = (this.index + 1) % this.stack.length;
      if (this.store.has(this.stack[next]) || !this.waiting) {
        this.waiting = !this.store.has(this.stack[next]);
        this.show(next).finally(() => {
          this.waiting = false;
        });
      }
    };
    this.playing = setTimeout(tick, 0);
  }

  stop() {
    if (this.playing) {
      clearTimeout(this.playing);
      this.playing = null;
    }
    const button = this.root.querySelector('[data-action="cine"]');
    button.textContent = "Play";
    button.setAttribute("aria-pressed", "false");
  }

  // Series ----------------------------------------------------------------------------------

  seriesLinks() {
    return [...document.querySelectorAll(".viewer-series-link")];
  }

  onSeriesLink(event) {
    const link = event.target.closest?.(".viewer-series-link");
    if (!link || link.hasAttribute("data-ecg") || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) {
      return;
    }
    event.preventDefault();
    this.switchTo(link);
  }

  nextSeries(by) {
    const links = this.seriesLinks();
    const current = links.findIndex((l) => l.getAttribute("aria-current") === "true");
    const next = links[current + by];
    if (!next) {
      return;
    }
    if (next.hasAttribute("data-ecg")) {
      next.click();
    } else {
      this.switchTo(next);
    }
  }

  switchTo(link) {
    for (const other of this.seriesLinks()) {
      other.removeAttribute("aria-current");
    }
    link.setAttribute("aria-current", "true");
    history.replaceState(null, "", link.href);
    const caption = this.root.querySelector(".viewer-overlay-tr span:last-child");
    caption.textContent = link.querySelector("strong")?.textContent ?? "";
    this.measurements.clear();
    this.drawing = null;
    this.window = null;
    this.view.reset();
    this.root.dataset.seriesUrl = link.dataset.seriesUrl;
    this.open(link.dataset.seriesUrl);
  }

  frameKey() {
    return this.entry ? `${this.entry.instance.sop}/${this.entry.frame}` : "";
  }
}

function midpoint(p, q) {
  return { x: (p.x + q.x) / 2, y: (p.y + q.y) / 2 };
}

function roundTo(value, step) {
  const unit = step >= 1 ? 1 : 10 ** Math.floor(Math.log10(step));
  return Math.round(value / unit) * unit;
}

/** A window value for the overlay: whole numbers as they are, else two significant decimals. */
export function formatNumber(value) {
  if (Number.isInteger(value)) {
    return String(value);
  }
  return String(Number(value.toFixed(Math.abs(value) >= 10 ? 1 : 3)));
}
