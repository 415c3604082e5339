/*
 * A series as a stack of frames: its instances (from WADO-RS series metadata) in order —
 * Instance Number, then Image Position Patient along the slice normal, then SOP Instance UID —
 * and each instance's frames, with what the pixel pipeline needs to know of them.
 */
import { TAG, items, number, numbers, text } from "./dicom-json.mjs";

const NATIVE = new Set([
  "1.2.840.10008.1.2",
  "1.2.840.10008.1.2.1",
  "1.2.840.10008.1.2.1.99",
  "1.2.840.10008.1.2.2",
]);
const SUPPORTED = new Set([
  "MONOCHROME1",
  "MONOCHROME2",
  "RGB",
  "YBR_FULL",
  "YBR_FULL_422",
  "PALETTE COLOR",
]);

/** The image instances of series metadata, in viewing order. */
export function orderInstances(metadata) {
  const images = metadata.filter((ds) => number(ds, TAG.rows) && number(ds, TAG.columns));
  const keyed = images.map((ds) => ({
    ds,
    number: number(ds, TAG.instanceNumber),
    position: positionAlongNormal(ds),
    uid: text(ds, TAG.sopInstanceUid),
  }));
  keyed.sort(
    (a, b) =>
      compareOptional(a.number, b.number) ||
      compareOptional(a.position, b.position) ||
      (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0),
  );
  return keyed.map((k) => k.ds);
}

function compareOptional(a, b) {
  if (a === undefined || b === undefined) {
    return a === undefined && b === undefined ? 0 : a === undefined ? 1 : -1;
  }
  return a - b;
}

/** Image Position Patient projected on the normal of Image Orientation Patient, if both. */
export function positionAlongNormal(ds) {
  const position = numbers(ds, TAG.imagePositionPatient);
  const orientation = numbers(ds, TAG.imageOrientationPatient);
  if (position?.length !== 3 || orientation?.length !== 6) {
    return undefined;
  }
  const [r0, r1, r2, c0, c1, c2] = orientation;
  const normal = [r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0];
  return position[0] * normal[0] + position[1] * normal[1] + position[2] * normal[2];
}

/** What the frames of an instance are: size, sample layout, colour space, calibration. */
export function describeInstance(ds, seriesUrl) {
  const sop = text(ds, TAG.sopInstanceUid);
  const syntax = text(ds, TAG.availableTransferSyntax);
  const photometric = text(ds, TAG.photometric).trim();
  return {
    ds,
    sop,
    url: `${seriesUrl}/instances/${sop}`,
    rows: number(ds, TAG.rows),
    columns: number(ds, TAG.columns),
    frames: Math.max(1, Math.trunc(number(ds, TAG.numberOfFrames) ?? 1)),
    samplesPerPixel: number(ds, TAG.samplesPerPixel) ?? 1,
    bitsAllocated: number(ds, TAG.bitsAllocated) ?? 16,
    bitsStored: number(ds, TAG.bitsStored) ?? number(ds, TAG.bitsAllocated) ?? 16,
    pixelRepresentation: number(ds, TAG.pixelRepresentation) ?? 0,
    planarConfiguration: number(ds, TAG.planarConfiguration) ?? 0,
    photometric,
    supported: SUPPORTED.has(photometric) && (number(ds, TAG.bitsAllocated) ?? 16) % 8 === 0,
    // Compressed frames are decoded by the server (pydicom, as_rgb): colour arrives as RGB.
    decoded: Boolean(syntax) && !NATIVE.has(syntax),
    modality: text(ds, TAG.modality),
    frameRate:
      number(ds, TAG.recommendedFrameRate) ??
      number(ds, TAG.cineRate) ??
      (number(ds, TAG.frameTime) > 0 ? 1000 / number(ds, TAG.frameTime) : undefined),
  };
}

/** The colour space the pipeline sees for a frame of this instance. */
export function colourOf(instance) {
  const p = instance.photometric;
  if (p === "MONOCHROME1" || p === "MONOCHROME2") {
    return "grayscale";
  }
  if (p === "PALETTE COLOR") {
    return "palette";
  }
  return "rgb"; // RGB, and YBR converted either by the server's decoder or in pixels.mjs
}

/** Every frame of the series: [{instance, frame (1-based), index}], in order. */
export function stackOf(metadata, seriesUrl) {
  const stack = [];
  for (const ds of orderInstances(metadata)) {
    const instance = describeInstance(ds, seriesUrl);
    for (let frame = 1; frame <= instance.frames; frame += 1) {
      stack.push({ instance, frame, index: stack.length });
    }
  }
  return stack;
}

/**
 * The calibration of a frame: Pixel Spacing (also in the Pixel Measures functional group) in
 * "mm", else Imager Pixel Spacing in "mm (detector)", else none: "px (uncalibrated)".
 * `row` is the distance between rows (vertical), `column` between columns (PS3.3 10.7.1.3).
 */
export function calibration(ds, frameIndex) {
  const grouped = [
    items(items(ds, TAG.perFrameGroups)[frameIndex], TAG.pixelMeasures)[0],
    items(items(ds, TAG.sharedGroups)[0], TAG.pixelMeasures)[0],
  ];
  for (const source of [...grouped, ds]) {
    const spacing = numbers(source, TAG.pixelSpacing);
    if (spacing?.length === 2 && spacing.every((v) => v > 0)) {
      return { row: spacing[0], column: spacing[1], unit: "mm" };
    }
  }
  const imager = numbers(ds, TAG.imagerPixelSpacing);
  if (imager?.length === 2 && imager.every((v) => v > 0)) {
    return { row: imager[0], column: imager[1], unit: "mm (detector)" };
  }
  return { row: 1, column: 1, unit: "px (uncalibrated)" };
}
