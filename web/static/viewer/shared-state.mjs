/*
 * The image viewer's state as shared viewing in a call sends it, and applying such a state:
 * series and frame, window, zoom and pan, rotation, flips and invert (docs/consults.md,
 * "Shared study viewing"). Zoom is relative to the fitted zoom and pan is the image point at
 * the middle of the viewport, so viewports of different sizes show the same part of the image.
 */
import { Window } from "./pipeline.mjs";
import { toImage } from "./view.mjs";

const FUNCTIONS = ["linear", "linear_exact", "sigmoid"];

function round(value, places) {
  const unit = 10 ** places;
  return Math.round(value * unit) / unit;
}

/** The series link of the page's strip that is shown now. */
function currentLink() {
  return document.querySelector('.viewer-series-link[aria-current="true"]');
}

/** {study, series, kind: "image", image: {frame, window, fitted, zoom, centre, rotation, flip_h, flip_v, invert}}. */
export function viewState(viewer) {
  const { view } = viewer;
  const image = {
    frame: viewer.index ?? 0,
    window: viewer.window
      ? { center: viewer.window.center, width: viewer.window.width, fn: viewer.window.fn }
      : null,
    fitted: view.fitted,
    zoom: null,
    centre: null,
    rotation: view.rotation,
    flip_h: view.flipH,
    flip_v: view.flipV,
    invert: view.invert,
  };
  if (viewer.frame && !view.fitted) {
    const { columns, rows } = viewer.frame.entry.instance;
    const { width, height } = viewer.canvas;
    image.zoom = round(view.zoom / view.fitZoom(width, height, columns, rows), 4);
    const centre = toImage(viewer.matrix(), viewer.centre());
    image.centre = { x: round(centre.x, 2), y: round(centre.y, 2) };
  }
  return {
    study: viewer.root.dataset.studyUid,
    series: currentLink()?.dataset.seriesUid ?? viewer.root.dataset.seriesUid,
    kind: "image",
    image,
  };
}

/** Switch in place to another image series of the strip; false for an ECG or unknown one. */
export function switchSeries(viewer, seriesUid) {
  const link = [...document.querySelectorAll(".viewer-series-link")].find(
    (candidate) => candidate.dataset.seriesUid === seriesUid,
  );
  if (!link || link.hasAttribute("data-ecg")) {
    return false;
  }
  viewer.switchTo(link);
  return true;
}

/** Show a shared state; true once shown, false while its frame is still loading. */
export function applyViewState(viewer, state) {
  const image = state.image;
  if (!image || typeof image !== "object") {
    return true;
  }
  if (!viewer.stack.length) {
    return false; // the series' metadata has not come yet
  }
  const frame = Math.min(viewer.stack.length - 1, Math.max(0, Math.trunc(Number(image.frame) || 0)));
  if (viewer.index !== frame) {
    viewer.show(frame);
  }
  if (!viewer.frame || viewer.entry?.index !== frame) {
    return false;
  }
  const view = viewer.view;
  view.rotation = (Math.trunc(Number(image.rotation) || 0) % 4 + 4) % 4;
  const toggles = { "flip-h": ["flipH", image.flip_h], "flip-v": ["flipV", image.flip_v], invert: ["invert", image.invert] };
  for (const [action, [name, value]] of Object.entries(toggles)) {
    view[name] = Boolean(value);
    viewer.root.querySelector(`[data-action="${action}"]`)?.setAttribute("aria-pressed", String(view[name]));
  }
  const window = image.window;
  const fn = FUNCTIONS.includes(window?.fn) ? window.fn : "linear";
  viewer.window =
    window && typeof window === "object" ? Window.orNull(Number(window.center), Number(window.width), fn) : null;
  const presets = viewer.part("presets");
  if (presets) {
    presets.value = viewer.window ? "" : "0";
  }
  const { columns, rows } = viewer.frame.entry.instance;
  const { width, height } = viewer.canvas;
  const zoom = Number(image.zoom);
  const centre = image.centre;
  if (image.fitted !== false || !(zoom > 0) || !centre) {
    view.fitted = true;
  } else {
    view.fitted = false;
    view.zoom = Math.min(32, Math.max(0.05, zoom * view.fitZoom(width, height, columns, rows)));
    view.anchor({ x: Number(centre.x) || 0, y: Number(centre.y) || 0 }, viewer.centre(), width, height, columns, rows);
  }
  viewer.render();
  return true;
}
