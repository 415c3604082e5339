/* Countdowns to the end of an offer: "0:45 left to answer", updated by whoever shows them. */

/** "m:ss" of the seconds left until an ISO time (0:00 once it has passed). */
export function clockLeft(iso, now = Date.now()) {
  const seconds = Math.max(0, Math.ceil((Date.parse(iso) - now) / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

/** True once the ISO time has passed. */
export function over(iso, now = Date.now()) {
  return Date.parse(iso) <= now;
}

/**
 * Update every [data-countdown][data-until] inside root; returns true when one has just run
 * out (so that the caller fetches what happened next).
 */
export function tickCountdowns(root, now = Date.now()) {
  let ranOut = false;
  for (const place of root.querySelectorAll("[data-countdown][data-until]")) {
    const until = place.dataset.until;
    if (over(until, now)) {
      if (place.dataset.countdownDone !== "yes") {
        place.dataset.countdownDone = "yes";
        place.textContent = "Time is up.";
        ranOut = true;
      }
    } else {
      place.textContent = `${clockLeft(until, now)} ${place.dataset.suffix || "left to answer"}`;
    }
  }
  return ranOut;
}
