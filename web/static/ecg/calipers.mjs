/*
 * Calipers on ECG paper. The paper SVG's user unit is 1 mm, so a caliper is two points in
 * millimetres; at a paper speed (mm/s) and gain (mm/mV) its width is a time and its height a
 * voltage. An RR caliper also reads as a heart rate.
 */
const SVG_NS = "http://www.w3.org/2000/svg";

/** The time (ms), voltage (mV, upwards positive) and rate (bpm, null for a zero width) between two points in mm. */
export function caliperReading(start, end, { speed, gain }) {
  const ms = (Math.abs(end.x - start.x) / speed) * 1000;
  const mV = (start.y - end.y) / gain;
  return { ms, mV, bpm: ms > 0 ? 60000 / ms : null };
}

/** "360 ms · 1.05 mV · 167 bpm": what a caliper reads, as shown beside it. */
export function describeReading({ ms, mV, bpm }) {
  const parts = [`${Math.round(ms)} ms`, `${mV.toFixed(2)} mV`];
  if (bpm !== null && ms >= 200) {
    parts.push(`${Math.round(bpm)} bpm`);
  }
  return parts.join(" · ");
}

function element(name, attributes) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) {
    node.setAttribute(key, String(value));
  }
  return node;
}

/**
 * A caliper drawn on the paper with the pointer (drag from one point to another) or the
 * keyboard (arrow keys move its end by 1 mm, with Shift by 0.2 mm). `onChange` hears each reading.
 */
export class Caliper {
  #svg;
  #paper;
  #group;
  #start = null;
  #end = null;
  #dragging = false;
  #onChange;

  constructor(svg, paper, onChange) {
    this.#svg = svg;
    this.#paper = paper;
    this.#onChange = onChange;
    this.#group = element("g", { class: "caliper", "data-role": "caliper" });
    svg.append(this.#group);
    svg.addEventListener("pointerdown", (event) => this.#down(event));
    svg.addEventListener("pointermove", (event) => this.#move(event));
    svg.addEventListener("pointerup", (event) => this.#up(event));
    svg.addEventListener("pointercancel", () => {
      this.#dragging = false;
    });
  }

  /** Place the caliper from one point to another (mm). */
  place(start, end) {
    this.#start = { ...start };
    this.#end = { ...end };
    this.#draw();
  }

  /** Where the caliper is ({start, end} in mm), or null when there is none. */
  points() {
    return this.#start ? { start: { ...this.#start }, end: { ...this.#end } } : null;
  }

  clear() {
    this.#start = null;
    this.#end = null;
    this.#group.replaceChildren();
  }

  /** Move the caliper's end by (dx, dy) mm; starts a 10 mm caliper in the middle if there is none. */
  nudge(dx, dy) {
    if (!this.#start) {
      const box = this.#svg.viewBox.baseVal;
      const middle = { x: box.width / 2, y: box.height / 2 };
      this.place(middle, { x: middle.x + 10, y: middle.y });
      return;
    }
    this.place(this.#start, { x: this.#end.x + dx, y: this.#end.y + dy });
  }

  #point(event) {
    const matrix = this.#svg.getScreenCTM();
    if (!matrix) {
      return null;
    }
    const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
    return { x: point.x, y: point.y };
  }

  #down(event) {
    if (event.button !== 0) {
      return;
    }
    const point = this.#point(event);
    if (!point) {
      return;
    }
    event.preventDefault();
    this.#svg.setPointerCapture(event.pointerId);
    this.#dragging = true;
    this.place(point, point);
  }

  #move(event) {
    if (!this.#dragging) {
      return;
    }
    const point = this.#point(event);
    if (point) {
      this.place(this.#start, point);
    }
  }

  #up(event) {
    if (!this.#dragging) {
      return;
    }
    this.#dragging = false;
    this.#svg.releasePointerCapture(event.pointerId);
  }

  #draw() {
    const { x: x0, y: y0 } = this.#start;
    const { x: x1, y: y1 } = this.#end;
    const box = this.#svg.viewBox.baseVal;
    const reading = caliperReading(this.#start, this.#end, this.#paper());
    const text = element("text", { x: Math.max(x0, x1) + 1.5, y: Math.min(y0, y1) - 1.5, class: "caliper-label" });
    text.textContent = describeReading(reading);
    this.#group.replaceChildren(
      element("line", { x1: x0, y1: 0, x2: x0, y2: box.height, class: "caliper-time" }),
      element("line", { x1: x1, y1: 0, x2: x1, y2: box.height, class: "caliper-time" }),
      element("line", { x1: x0, y1: y0, x2: x1, y2: y0, class: "caliper-voltage" }),
      element("line", { x1: x1, y1: y0, x2: x1, y2: y1, class: "caliper-voltage" }),
      text,
    );
    this.#onChange(reading);
  }
}
