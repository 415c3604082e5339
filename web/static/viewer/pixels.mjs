/*
 * Frame bytes (native little endian, as WADO-RS frames are sent as application/octet-stream)
 * to typed arrays of samples: Uint8/Int8/Uint16/Int16/Uint32/Int32 by the sample size and Pixel
 * Representation, with the bits above Bits Stored masked off (unsigned) or the sign extended
 * from bit Bits Stored - 1 (signed), as pydicom does. Colour frames come out interleaved
 * (R G B R G B ...): planar frames are interleaved, YBR_FULL and YBR_FULL_422 converted to RGB.
 */

const ARRAYS = {
  1: [Uint8Array, Int8Array],
  2: [Uint16Array, Int16Array],
  4: [Uint32Array, Int32Array],
};

/** The samples of one frame; `image` has rows, columns, samplesPerPixel, bits, photometric. */
export function frameSamples(bytes, image) {
  const { rows, columns, samplesPerPixel } = image;
  const pixels = rows * columns;
  if (image.photometric === "YBR_FULL_422" && !image.decoded && samplesPerPixel === 3) {
    if (bytes.length < pixels * 2) {
      throw new Error(`a YBR_FULL_422 frame of ${bytes.length} bytes is short`);
    }
    return ybrFullToRgb(expand422(bytes, pixels));
  }
  const size = bytes.length / (pixels * samplesPerPixel);
  const pair = ARRAYS[size];
  if (!pair) {
    throw new Error(`${bytes.length} bytes is not a ${columns}x${rows}x${samplesPerPixel} frame`);
  }
  const signed = image.pixelRepresentation === 1;
  const Type = pair[signed ? 1 : 0];
  // A copy: the part may start at an odd offset, and typed arrays need aligned buffers.
  let samples = new Type(bytes.slice().buffer);
  samples = stored(samples, image.bitsStored, size * 8, signed);
  if (samplesPerPixel === 3 && image.planarConfiguration === 1 && !image.decoded) {
    samples = interleave(samples, pixels);
  }
  if (image.photometric === "YBR_FULL" && !image.decoded && samplesPerPixel === 3) {
    samples = ybrFullToRgb(samples);
  }
  return samples;
}

/** Mask (unsigned) or sign-extend (signed) samples to their Bits Stored, in place. */
export function stored(samples, bitsStored, bits, signed) {
  if (!bitsStored || bitsStored >= bits) {
    return samples;
  }
  if (signed) {
    const shift = 32 - bitsStored;
    for (let i = 0; i < samples.length; i += 1) {
      samples[i] = (samples[i] << shift) >> shift;
    }
  } else {
    const mask = bitsStored >= 32 ? 0xffffffff : 2 ** bitsStored - 1;
    for (let i = 0; i < samples.length; i += 1) {
      samples[i] = samples[i] & mask;
    }
  }
  return samples;
}

function interleave(planar, pixels) {
  const out = new planar.constructor(planar.length);
  for (let i = 0; i < pixels; i += 1) {
    out[3 * i] = planar[i];
    out[3 * i + 1] = planar[pixels + i];
    out[3 * i + 2] = planar[2 * pixels + i];
  }
  return out;
}

function expand422(bytes, pixels) {
  // Y1 Y2 Cb Cr for each pair of pixels (PS3.3 C.7.6.3.1.2).
  const out = new Uint8Array(pixels * 3);
  for (let p = 0, i = 0; p < pixels; p += 2, i += 4) {
    const cb = bytes[i + 2];
    const cr = bytes[i + 3];
    out.set([bytes[i], cb, cr], 3 * p);
    if (p + 1 < pixels) {
      out.set([bytes[i + 1], cb, cr], 3 * p + 3);
    }
  }
  return out;
}

const f = Math.fround;
const CB_G = f((-0.114 * 1.772) / 0.587);
const CR_G = f((-0.299 * 1.402) / 0.587);
const CB_B = f(1.772);
const CR_R = f(1.402);

/** YBR_FULL to RGB exactly as pydicom's convert_color_space (float32, floor(x + 0.5), clip). */
export function ybrFullToRgb(samples) {
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i += 3) {
    const y = f(samples[i]);
    const cb = f(samples[i + 1] - 128);
    const cr = f(samples[i + 2] - 128);
    out[i] = clip(Math.floor(f(f(y + f(cr * CR_R)) + 0.5)));
    out[i + 1] = clip(Math.floor(f(f(f(y + f(cb * CB_G)) + f(cr * CR_G)) + 0.5)));
    out[i + 2] = clip(Math.floor(f(f(y + f(cb * CB_B)) + 0.5)));
  }
  return out;
}

function clip(value) {
  return value < 0 ? 0 : value > 255 ? 255 : value;
}
