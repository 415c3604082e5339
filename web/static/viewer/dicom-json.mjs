/*
 * Reading the DICOM JSON model (PS3.18 Annex F): values by tag, numbers, sequences, and
 * binary values given inline (InlineBinary), as numbers (US/SS Value) or by BulkDataURI.
 */
import { parseMultipart } from "./multipart.mjs";

/** Tags the viewer reads (group and element as 8 upper-case hex digits). */
export const TAG = Object.freeze({
  sopClassUid: "00080016",
  sopInstanceUid: "00080018",
  modality: "00080060",
  availableTransferSyntax: "00083002",
  seriesDescription: "0008103E",
  seriesNumber: "00200011",
  instanceNumber: "00200013",
  imagePositionPatient: "00200032",
  imageOrientationPatient: "00200037",
  samplesPerPixel: "00280002",
  photometric: "00280004",
  planarConfiguration: "00280006",
  numberOfFrames: "00280008",
  rows: "00280010",
  columns: "00280011",
  pixelSpacing: "00280030",
  imagerPixelSpacing: "00181164",
  bitsAllocated: "00280100",
  bitsStored: "00280101",
  pixelRepresentation: "00280103",
  windowCenter: "00281050",
  windowWidth: "00281051",
  windowExplanation: "00281055",
  voiLutFunction: "00281056",
  rescaleIntercept: "00281052",
  rescaleSlope: "00281053",
  modalityLutSequence: "00283000",
  voiLutSequence: "00283010",
  lutDescriptor: "00283002",
  lutData: "00283006",
  redDescriptor: "00281101",
  greenDescriptor: "00281102",
  blueDescriptor: "00281103",
  redData: "00281201",
  greenData: "00281202",
  blueData: "00281203",
  segmentedRedData: "00281221",
  sharedGroups: "52009229",
  perFrameGroups: "52009230",
  pixelMeasures: "00289110",
  pixelValueTransformation: "00289145",
  frameVoiLut: "00289132",
  planePosition: "00209113",
  planeOrientation: "00209116",
  cineRate: "00180040",
  frameTime: "00181063",
  recommendedFrameRate: "00082144",
});

/** The Value array of an element, or undefined. */
export function values(ds, tag) {
  const element = ds?.[tag];
  return Array.isArray(element?.Value) ? element.Value : undefined;
}

/** The first value of an element, or undefined. */
export function first(ds, tag) {
  return values(ds, tag)?.[0];
}

/** The numbers of an element (IS and DS values may be strings in DICOM JSON). */
export function numbers(ds, tag) {
  const found = values(ds, tag);
  if (!found) {
    return undefined;
  }
  const parsed = found.map((v) => (typeof v === "number" ? v : Number.parseFloat(String(v))));
  return parsed.every(Number.isFinite) ? parsed : undefined;
}

/** The first number of an element, or undefined. */
export function number(ds, tag) {
  return numbers(ds, tag)?.[0];
}

/** The first value as text; a person name as its alphabetic group. */
export function text(ds, tag) {
  const value = first(ds, tag);
  if (value === undefined || value === null) {
    return "";
  }
  return typeof value === "object" ? String(value.Alphabetic ?? "") : String(value);
}

/** The items of a sequence (an empty array when absent). */
export function items(ds, tag) {
  return values(ds, tag) ?? [];
}

/** Whether an element is present (with or without a value). */
export function has(ds, tag) {
  return Boolean(ds && tag in ds);
}

/**
 * The bytes of a binary element: InlineBinary, a US/SS Value list (as 16-bit little endian
 * words) or its BulkDataURI fetched as multipart/related application/octet-stream.
 */
export async function binary(ds, tag, fetchOptions = {}) {
  const element = ds?.[tag];
  if (!element) {
    return undefined;
  }
  if (typeof element.InlineBinary === "string") {
    const raw = atob(element.InlineBinary);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes;
  }
  if (Array.isArray(element.Value)) {
    const words = new Uint16Array(element.Value.map((v) => Number(v) & 0xffff));
    return new Uint8Array(words.buffer);
  }
  if (typeof element.BulkDataURI === "string") {
    const response = await fetch(element.BulkDataURI, {
      ...fetchOptions,
      credentials: "same-origin",
      headers: { Accept: 'multipart/related; type="application/octet-stream"' },
    });
    if (!response.ok) {
      throw new Error(`bulk data ${response.status}`);
    }
    const parts = parseMultipart(
      new Uint8Array(await response.arrayBuffer()),
      response.headers.get("Content-Type") ?? "",
    );
    return parts[0]?.body;
  }
  return undefined;
}
