/*
 * The blood-pressure trend of a person's last visits as an SVG line chart (systolic and
 * diastolic, different marks as well as colours, the 140/90 "high" lines), with a summary for
 * screen readers (role="img" + aria-label) and the same figures as table rows. Shared by the
 * kiosk's "Welcome back" screen and the specialist's vitals panel in the call. Dates and numbers
 * are formatted with Intl in the page's locale.
 */
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 720;
const HEIGHT = 340;
const PAD = { left: 64, right: 24, top: 24, bottom: 56 };
const INSET = 48;
const HIGH = { systolic: 140, diastolic: 90 };

function node(name, attributes = {}, text = "") {
  const found = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) {
    found.setAttribute(key, String(value));
  }
  if (text) {
    found.textContent = text;
  }
  return found;
}

/** The readings that have a blood pressure, oldest first. */
export function pressures(readings) {
  return (readings || []).filter((r) => Number.isFinite(r.systolic) && Number.isFinite(r.diastolic));
}

/** Short date of a reading ("3 Dec", "12月3日") in the locale. */
export function shortDate(iso, locale) {
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) {
    return "";
  }
  return new Intl.DateTimeFormat(locale, { day: "numeric", month: "short" }).format(moment);
}

/** Full date of a reading ("3 Dec 2026", "2026年12月3日") in the locale. */
export function longDate(iso, locale) {
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) {
    return "";
  }
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium" }).format(moment);
}

/** A message template with {name} placeholders filled. */
export function fill(template, values) {
  return String(template || "").replace(/\{(\w+)\}/g, (whole, key) =>
    key in values ? String(values[key]) : whole,
  );
}

/**
 * Draw the chart into `host` (replacing what was there); `summary` is the template of the
 * accessible summary ({count}, {first}, {last}, {systolic}, {diastolic}). Returns the summary
 * text, or "" when there is nothing to draw.
 */
export function drawBpChart(host, readings, { locale, summary, systolicLabel = "", diastolicLabel = "" }) {
  const points = pressures(readings);
  host.replaceChildren();
  if (!points.length) {
    return "";
  }
  const number = new Intl.NumberFormat(locale);
  const last = points[points.length - 1];
  const text = fill(summary, {
    count: number.format(points.length),
    first: longDate(points[0].taken_at, locale),
    last: longDate(last.taken_at, locale),
    systolic: number.format(last.systolic),
    diastolic: number.format(last.diastolic),
  });
  const values = points.flatMap((p) => [p.systolic, p.diastolic]);
  const low = Math.max(0, Math.floor((Math.min(...values, HIGH.diastolic) - 15) / 20) * 20);
  const high = Math.ceil((Math.max(...values, HIGH.systolic) + 15) / 20) * 20;
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (i) =>
    PAD.left + INSET + (points.length === 1 ? (plotW - 2 * INSET) / 2 : (i * (plotW - 2 * INSET)) / (points.length - 1));
  const y = (v) => PAD.top + plotH - ((v - low) * plotH) / (high - low);

  const svg = node("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-label": text,
    class: "bp-chart",
    preserveAspectRatio: "xMidYMid meet",
  });
  svg.append(node("title", {}, text));
  const grid = node("g", { class: "bp-grid", "aria-hidden": "true" });
  for (let v = low; v <= high; v += 20) {
    grid.append(node("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v) }));
    grid.append(node("text", { x: PAD.left - 10, y: y(v) + 6, "text-anchor": "end" }, number.format(v)));
  }
  for (const v of [HIGH.systolic, HIGH.diastolic]) {
    grid.append(node("line", { class: "bp-limit", x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v) }));
  }
  const every = Math.max(1, Math.ceil(points.length / 6));
  points.forEach((p, i) => {
    if (i % every === 0 || i === points.length - 1) {
      grid.append(node("text", { x: x(i), y: HEIGHT - 18, "text-anchor": "middle" }, shortDate(p.taken_at, locale)));
    }
  });
  svg.append(grid);
  for (const [key, label] of [
    ["systolic", systolicLabel],
    ["diastolic", diastolicLabel],
  ]) {
    const series = node("g", { class: `bp-series bp-${key}`, "aria-hidden": "true" });
    if (label) {
      series.append(node("title", {}, label));
    }
    series.append(
      node("polyline", { points: points.map((p, i) => `${x(i)},${y(p[key])}`).join(" ") }),
    );
    points.forEach((p, i) => {
      const cx = x(i);
      const cy = y(p[key]);
      series.append(
        key === "systolic"
          ? node("circle", { cx, cy, r: 8 })
          : node("rect", { x: cx - 7, y: cy - 7, width: 14, height: 14 }),
      );
      if (i === points.length - 1 || points.length <= 8) {
        series.append(
          node("text", { x: cx, y: key === "systolic" ? cy - 16 : cy + 30, "text-anchor": "middle" }, number.format(p[key])),
        );
      }
    });
    svg.append(series);
  }
  host.append(svg);
  return text;
}

/** The readings as rows of a table body: date, systolic, diastolic, pulse (newest first). */
export function fillBpTable(tbody, readings, locale) {
  const number = new Intl.NumberFormat(locale);
  const show = (v) => (Number.isFinite(v) ? number.format(v) : "—");
  tbody.replaceChildren();
  for (const reading of [...pressures(readings)].reverse()) {
    const row = document.createElement("tr");
    const when = document.createElement("th");
    when.scope = "row";
    when.textContent = longDate(reading.taken_at, locale);
    row.append(when);
    for (const key of ["systolic", "diastolic", "heart_rate"]) {
      const cell = document.createElement("td");
      cell.textContent = show(reading[key]);
      row.append(cell);
    }
    tbody.append(row);
  }
}
