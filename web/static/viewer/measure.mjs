/*
 * Length and angle measurements in image coordinates (pixel centres at integer + 0.5), made
 * physical with the frame's calibration (series.mjs `calibration`): Pixel Spacing gives "mm",
 * Imager Pixel Spacing "mm (detector)", neither "px (uncalibrated)".
 */

/** The distance between two image points in the calibration's unit. */
export function length(a, b, calibration) {
  const dx = (b.x - a.x) * calibration.column;
  const dy = (b.y - a.y) * calibration.row;
  return Math.hypot(dx, dy);
}

/** The angle at `vertex` between the arms to `a` and `b`, in degrees (0..180), in physical space. */
export function angle(a, vertex, b, calibration) {
  const ux = (a.x - vertex.x) * calibration.column;
  const uy = (a.y - vertex.y) * calibration.row;
  const vx = (b.x - vertex.x) * calibration.column;
  const vy = (b.y - vertex.y) * calibration.row;
  const radians = Math.atan2(Math.abs(ux * vy - uy * vx), ux * vx + uy * vy);
  return (radians * 180) / Math.PI;
}

/** The text of a measurement: "12.3 mm", "40 px (uncalibrated)", "35.2°". */
export function label(measurement, calibration) {
  const [a, b, c] = measurement.points;
  if (measurement.kind === "angle") {
    return c ? `${angle(a, b, c, calibration).toFixed(1)}°` : "";
  }
  const value = length(a, b, calibration);
  const digits = calibration.unit.startsWith("mm") ? 1 : 0;
  return `${value.toFixed(digits)} ${calibration.unit}`;
}

/** How many points a measurement of this kind has when it is complete. */
export function pointsOf(kind) {
  return kind === "angle" ? 3 : 2;
}
