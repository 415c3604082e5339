/*
 * The display transform of the viewport: zoom, pan, quarter-turn rotation and flips, as one
 * affine matrix from image pixels to canvas pixels (its translation rounded, so that at 1:1 an
 * image pixel lands exactly on a canvas pixel), and the canvas drawing itself.
 */

const QUARTER = [
  [1, 0],
  [0, 1],
  [-1, 0],
  [0, -1],
]; // [cos, sin] of 0°, 90°, 180°, 270°: exact, so that rotated images stay on the pixel grid

export class View {
  constructor() {
    this.reset();
  }

  reset() {
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    this.rotation = 0;
    this.flipH = false;
    this.flipV = false;
    this.invert = false;
    this.fitted = true; // the zoom follows the viewport size until the user zooms
  }

  /** The zoom at which the whole image fits the canvas. */
  fitZoom(canvasWidth, canvasHeight, columns, rows) {
    const [w, h] = this.rotation % 2 ? [rows, columns] : [columns, rows];
    return Math.min(canvasWidth / w, canvasHeight / h);
  }

  /** The linear part [a, b, c, d] of the image-to-canvas matrix. */
  linear() {
    const [cos, sin] = QUARTER[this.rotation];
    const sx = (this.flipH ? -1 : 1) * this.zoom;
    const sy = (this.flipV ? -1 : 1) * this.zoom;
    return [cos * sx, sin * sx, -sin * sy, cos * sy];
  }

  /** The image-to-canvas matrix {a, b, c, d, e, f} (canvas = M · image). */
  matrix(canvasWidth, canvasHeight, columns, rows) {
    const [a, b, c, d] = this.linear();
    const tx = canvasWidth / 2 + this.panX;
    const ty = canvasHeight / 2 + this.panY;
    const e = Math.round(tx - a * (columns / 2) - c * (rows / 2));
    const f = Math.round(ty - b * (columns / 2) - d * (rows / 2));
    return { a, b, c, d, e, f };
  }

  /** Keep `image` point under `canvas` point (after a zoom); panning follows. */
  anchor(imagePoint, canvasPoint, canvasWidth, canvasHeight, columns, rows) {
    const [a, b, c, d] = this.linear();
    const px = imagePoint.x - columns / 2;
    const py = imagePoint.y - rows / 2;
    this.panX = canvasPoint.x - canvasWidth / 2 - (a * px + c * py);
    this.panY = canvasPoint.y - canvasHeight / 2 - (b * px + d * py);
  }
}

/** A canvas point of an image point under matrix m. */
export function toCanvas(m, p) {
  return { x: m.a * p.x + m.c * p.y + m.e, y: m.b * p.x + m.d * p.y + m.f };
}

/** The image point of a canvas point under matrix m. */
export function toImage(m, p) {
  const det = m.a * m.d - m.b * m.c;
  const x = p.x - m.e;
  const y = p.y - m.f;
  return { x: (m.d * x - m.c * y) / det, y: (-m.b * x + m.a * y) / det };
}

/** Draw `source` (an image-sized canvas) with matrix m; nearest neighbour from 1:1 up. */
export function draw(canvas, source, m, zoom) {
  const context = canvas.getContext("2d");
  context.setTransform(1, 0, 0, 1, 0, 0);
  context.fillStyle = "#000";
  context.fillRect(0, 0, canvas.width, canvas.height);
  if (!source) {
    return;
  }
  context.imageSmoothingEnabled = zoom < 1;
  context.imageSmoothingQuality = "high";
  context.setTransform(m.a, m.b, m.c, m.d, m.e, m.f);
  context.drawImage(source, 0, 0);
  context.setTransform(1, 0, 0, 1, 0, 0);
}
