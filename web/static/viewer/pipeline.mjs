/*
 * The pixel pipeline of dicom_tools/rendering.py, in the browser, so that a window drag needs no
 * round trip. Grayscale: Modality LUT (Rescale Slope/Intercept, or a Modality LUT Sequence), then
 * VOI — the chosen window (linear PS3.3 C.11.2.1.2.1, linear_exact C.11.2.1.3.2, sigmoid
 * C.11.2.1.3.1), else the file's VOI LUT Sequence, else its first Window Center/Width, else the
 * frame's minimum to maximum — then MONOCHROME1 inverted, and rounded half to even (numpy's rint).
 * Colour: RGB samples scaled from Bits Stored to 8 bits; PALETTE COLOR through its LUTs.
 * The attributes are those of the frame: top level, then the shared and per-frame functional
 * groups (Pixel Value Transformation, Frame VOI LUT), as rendering.py merges them.
 */
import { TAG, binary, has, items, number, numbers, text } from "./dicom-json.mjs";

/** The attributes the grayscale pipeline reads, in the order rendering.py lists them. */
const PIPELINE_TAGS = [
  TAG.bitsStored,
  TAG.pixelRepresentation,
  TAG.rescaleSlope,
  TAG.rescaleIntercept,
  "00281054", // Rescale Type
  TAG.modalityLutSequence,
  TAG.voiLutSequence,
  TAG.windowCenter,
  TAG.windowWidth,
  TAG.voiLutFunction,
];
const FRAME_GROUPS = [TAG.pixelValueTransformation, TAG.frameVoiLut];
const FILE_FUNCTIONS = { LINEAR: "linear", LINEAR_EXACT: "linear_exact", SIGMOID: "sigmoid" };

/** A VOI window: center and width in modality units, and its function. */
export class Window {
  constructor(center, width, fn = "linear") {
    const wideEnough = fn === "linear" ? width >= 1 : width > 0;
    if (!(Number.isFinite(center) && Number.isFinite(width) && wideEnough)) {
      throw new RangeError(`a ${fn} window cannot be ${center}, ${width}`);
    }
    this.center = center;
    this.width = width;
    this.fn = fn;
  }

  /** The same window, or null when the values cannot make one. */
  static orNull(center, width, fn = "linear") {
    try {
      return new Window(center, width, fn);
    } catch {
      return null;
    }
  }

  /** Map modality values to 0..255 (floats, not yet rounded) into `out`. */
  apply(values, out) {
    const c = this.center;
    const w = this.width;
    const n = values.length;
    if (this.fn === "sigmoid") {
      for (let i = 0; i < n; i += 1) {
        out[i] = 127.5 * (1 + Math.tanh((2 * (values[i] - c)) / w));
      }
    } else if (this.fn === "linear_exact") {
      for (let i = 0; i < n; i += 1) {
        out[i] = clip255(((values[i] - c) / w + 0.5) * 255);
      }
    } else if (w === 1) {
      for (let i = 0; i < n; i += 1) {
        out[i] = values[i] <= c - 0.5 ? 0 : 255;
      }
    } else {
      const low = c - 0.5;
      const span = w - 1;
      for (let i = 0; i < n; i += 1) {
        out[i] = clip255(((values[i] - low) / span + 0.5) * 255);
      }
    }
    return out;
  }
}

/** The pipeline attributes of one frame (0-based) as a DICOM JSON object. */
export function frameAttributes(ds, index) {
  const sources = [ds];
  for (const [groupsTag, item] of [
    [TAG.sharedGroups, 0],
    [TAG.perFrameGroups, index],
  ]) {
    const groups = items(ds, groupsTag);
    if (groups.length > item) {
      for (const tag of FRAME_GROUPS) {
        const inner = items(groups[item], tag);
        if (inner.length) {
          sources.push(inner[0]);
        }
      }
    }
  }
  const attributes = {};
  for (const source of sources) {
    for (const tag of PIPELINE_TAGS) {
      if (has(source, tag)) {
        attributes[tag] = source[tag];
      }
    }
  }
  return attributes;
}

/** A lookup table item (Modality or VOI LUT Sequence) with its data loaded. */
export async function loadLut(item) {
  const [entries, firstMap, bits] = numbers(item, TAG.lutDescriptor) ?? [];
  if (bits === undefined) {
    throw new Error("LUT Descriptor is missing");
  }
  const bytes = await binary(item, TAG.lutData);
  if (!bytes) {
    throw new Error("LUT Data is missing");
  }
  const count = entries || 65536;
  const words = new Uint16Array(bytes.slice(0, count * 2).buffer);
  return { count, firstMap, bits, data: words };
}

/** The LUTs a grayscale instance needs, loaded (per frame attributes may name others). */
export async function loadGrayscaleLuts(attributes) {
  const [modality] = items(attributes, TAG.modalityLutSequence);
  const [voi] = items(attributes, TAG.voiLutSequence);
  return {
    modality: modality ? await loadLut(modality) : null,
    voi: voi ? await loadLut(voi) : null,
  };
}

function lookup(values, lut, bitsOut) {
  const out = new Float64Array(values.length);
  const mask = bitsOut <= 8 ? 0xff : 0xffff;
  const last = lut.count - 1;
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    let index = v >= lut.firstMap ? Math.trunc(v - lut.firstMap) : 0;
    index = index < 0 ? 0 : index > last ? last : index;
    out[i] = lut.data[index] & mask;
  }
  return out;
}

/** Modality values of the samples: the Modality LUT, else rescale (both needed), else as is. */
export function modalityValues(samples, attributes, luts) {
  if (luts.modality) {
    return lookup(samples, luts.modality, luts.modality.bits);
  }
  const slope = number(attributes, TAG.rescaleSlope);
  const intercept = number(attributes, TAG.rescaleIntercept);
  const out = new Float64Array(samples.length);
  if (slope !== undefined && intercept !== undefined && has(attributes, TAG.rescaleSlope)) {
    for (let i = 0; i < samples.length; i += 1) {
      out[i] = samples[i] * slope + intercept;
    }
  } else {
    out.set(samples);
  }
  return out;
}

/** The first window stored in the file, if it has a usable one. */
export function fileWindow(attributes) {
  const centers = numbers(attributes, TAG.windowCenter);
  const widths = numbers(attributes, TAG.windowWidth);
  if (!centers?.length || !widths?.length) {
    return null;
  }
  const fn = FILE_FUNCTIONS[text(attributes, TAG.voiLutFunction) || "LINEAR"] ?? "linear";
  return Window.orNull(centers[0], widths[0], fn);
}

/** Every window stored in the file (for presets): [{center, width, fn, name}]. */
export function fileWindows(attributes) {
  const centers = numbers(attributes, TAG.windowCenter) ?? [];
  const widths = numbers(attributes, TAG.windowWidth) ?? [];
  const fn = FILE_FUNCTIONS[text(attributes, TAG.voiLutFunction) || "LINEAR"] ?? "linear";
  const names = (attributes[TAG.windowExplanation]?.Value ?? []).map(String);
  const found = [];
  for (let i = 0; i < Math.min(centers.length, widths.length); i += 1) {
    const window = Window.orNull(centers[i], widths[i], fn);
    if (window) {
      found.push({ window, name: names[i] || `File window ${i + 1}` });
    }
  }
  return found;
}

/** The frame's minimum to maximum as a linear_exact window. */
export function fullRange(values) {
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    if (v < low) low = v;
    if (v > high) high = v;
  }
  return new Window((low + high) / 2, Math.max(high - low, 1e-6), "linear_exact");
}

/**
 * Which VOI applies without a chosen window: {kind: "lut"} for the file's VOI LUT Sequence,
 * else {kind: "window", window} (the file's first window, else the frame's full range).
 */
export function defaultVoi(values, attributes, luts) {
  if (luts.voi) {
    return { kind: "lut" };
  }
  return { kind: "window", window: fileWindow(attributes) ?? fullRange(values) };
}

/** 8-bit grey levels of modality values under a window (or the default VOI when null). */
export function grayscale(values, attributes, luts, window, photometric) {
  let shown;
  if (!window && luts.voi) {
    const top = 2 ** luts.voi.bits - 1;
    shown = lookup(values, luts.voi, luts.voi.bits);
    for (let i = 0; i < shown.length; i += 1) {
      shown[i] = (shown[i] * 255) / top;
    }
  } else {
    const chosen = window ?? defaultVoi(values, attributes, luts).window;
    shown = chosen.apply(values, new Float64Array(values.length));
  }
  const out = new Uint8Array(shown.length);
  const invert = photometric === "MONOCHROME1";
  for (let i = 0; i < shown.length; i += 1) {
    out[i] = rint(invert ? 255 - shown[i] : shown[i]);
  }
  return out;
}

/** Unsigned samples of `bits` significant bits scaled to 0..255 (rendering.py `_scaled`). */
export function scaled(samples, bits) {
  const out = new Uint8Array(samples.length);
  if (bits === 8) {
    for (let i = 0; i < samples.length; i += 1) {
      out[i] = samples[i] & 0xff;
    }
    return out;
  }
  const top = 2 ** bits - 1;
  const factor = 255 / top;
  for (let i = 0; i < samples.length; i += 1) {
    const v = samples[i];
    out[i] = rint((v < 0 ? 0 : v > top ? top : v) * factor);
  }
  return out;
}

/** The red, green and blue palette tables of a PALETTE COLOR instance, loaded. */
export async function loadPalette(ds) {
  if (has(ds, TAG.segmentedRedData)) {
    throw new Error("segmented palettes are not supported by the viewer");
  }
  const [entries, firstMap, bits] = numbers(ds, TAG.redDescriptor) ?? [];
  if (bits === undefined) {
    throw new Error("the Red Palette Color Lookup Table Descriptor is missing");
  }
  const count = entries || 65536;
  const tables = [];
  for (const tag of [TAG.redData, TAG.greenData, TAG.blueData]) {
    const bytes = await binary(ds, tag);
    if (!bytes) {
      throw new Error("palette data is missing");
    }
    const depth = (bytes.length / count) * 8;
    if (depth !== 8 && depth !== 16) {
      throw new Error(`palette entries of ${depth} bits`);
    }
    const copy = bytes.slice();
    tables.push(depth === 8 ? copy : new Uint16Array(copy.buffer, 0, count));
  }
  return { count, firstMap, bits, tables };
}

/** PALETTE COLOR indices to interleaved 8-bit RGB (pydicom apply_color_lut, then `_scaled`). */
export function palette(samples, lut) {
  const rgb = new Uint32Array(samples.length * 3);
  const last = lut.count - 1;
  const [red, green, blue] = lut.tables;
  for (let i = 0; i < samples.length; i += 1) {
    const v = samples[i];
    let index = v >= lut.firstMap ? v - lut.firstMap : 0;
    index = index > last ? last : index;
    rgb[3 * i] = red[index];
    rgb[3 * i + 1] = green[index];
    rgb[3 * i + 2] = blue[index];
  }
  return scaled(rgb, lut.bits);
}

/** RGBA pixels for a canvas from grey levels or interleaved RGB, optionally inverted. */
export function rgba(levels, channels, invert, out) {
  const pixels = levels.length / channels;
  const flip = invert ? 255 : 0;
  for (let p = 0, o = 0; p < pixels; p += 1, o += 4) {
    if (channels === 1) {
      const v = Math.abs(flip - levels[p]);
      out[o] = v;
      out[o + 1] = v;
      out[o + 2] = v;
    } else {
      out[o] = Math.abs(flip - levels[3 * p]);
      out[o + 1] = Math.abs(flip - levels[3 * p + 1]);
      out[o + 2] = Math.abs(flip - levels[3 * p + 2]);
    }
    out[o + 3] = 255;
  }
  return out;
}

/** Round half to even, as numpy.rint. */
export function rint(x) {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function clip255(x) {
  return x < 0 ? 0 : x > 255 ? 255 : x;
}
