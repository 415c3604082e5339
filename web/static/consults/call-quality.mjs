/*
 * Network quality of a call from RTCPeerConnection.getStats(): round-trip time and route
 * (host, srflx or relay: the local candidate of the selected pair), packet loss and the bitrate received, as deltas between two samples, and the
 * low-bandwidth steps they lead to: full video, reduced video (half resolution, 15 frames/s,
 * 300 kb/s), then audio only; back up one step after a run of good samples.
 */
export const STEPS = ["full", "reduced", "audio"];
const POOR_RUN = 3;
const GOOD_RUN = 5;

/** One sample's figures from a stats report (and the previous sample's counters). */
export function sample(report, previous = null) {
  let rtt = null;
  let bytes = 0;
  let received = 0;
  let lost = 0;
  let frames = 0;
  let timestamp = 0;
  let route = "";
  report.forEach((stat) => {
    if (stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded") {
      if (typeof stat.currentRoundTripTime === "number") {
        rtt = stat.currentRoundTripTime * 1000;
      }
      route = report.get(stat.localCandidateId)?.candidateType || route;
    }
    if (stat.type === "inbound-rtp") {
      bytes += stat.bytesReceived || 0;
      received += stat.packetsReceived || 0;
      lost += Math.max(0, stat.packetsLost || 0);
      timestamp = Math.max(timestamp, stat.timestamp || 0);
      if (stat.kind === "video") {
        frames += stat.framesDecoded || 0;
      }
    }
  });
  const counters = { bytes, received, lost, frames, timestamp };
  if (!previous || timestamp <= previous.timestamp) {
    return { rttMs: rtt, lossPct: null, kbps: null, frames, route, counters };
  }
  const seconds = (timestamp - previous.timestamp) / 1000;
  const packets = received - previous.received + (lost - previous.lost);
  return {
    rttMs: rtt,
    lossPct: packets > 0 ? (100 * (lost - previous.lost)) / packets : 0,
    kbps: (8 * (bytes - previous.bytes)) / 1000 / seconds,
    frames,
    route,
    counters,
  };
}

/** good, fair or poor, from RTT and loss. */
export function level({ rttMs, lossPct }) {
  if ((lossPct ?? 0) > 8 || (rttMs ?? 0) > 600) {
    return "poor";
  }
  if ((lossPct ?? 0) > 2 || (rttMs ?? 0) > 300) {
    return "fair";
  }
  return "good";
}

/** Plain words for the indicator. */
export function describe(figures) {
  const parts = [];
  if (figures.rttMs !== null && figures.rttMs !== undefined) {
    parts.push(`delay ${Math.round(figures.rttMs)} ms`);
  }
  if (figures.lossPct !== null && figures.lossPct !== undefined) {
    parts.push(`loss ${figures.lossPct.toFixed(1)} %`);
  }
  if (figures.kbps !== null && figures.kbps !== undefined) {
    parts.push(figures.kbps >= 1000 ? `${(figures.kbps / 1000).toFixed(1)} Mb/s` : `${Math.round(figures.kbps)} kb/s`);
  }
  return parts.join(", ");
}

/** Which low-bandwidth step to take after each sample's level. */
export class BandwidthSteps {
  #poor = 0;
  #good = 0;
  step = 0;

  /** The step after this level (changes only after a run of the same verdict). */
  next(verdict) {
    if (verdict === "poor") {
      this.#poor += 1;
      this.#good = 0;
      if (this.#poor >= POOR_RUN && this.step < STEPS.length - 1) {
        this.step += 1;
        this.#poor = 0;
      }
    } else if (verdict === "good") {
      this.#good += 1;
      this.#poor = 0;
      if (this.#good >= GOOD_RUN && this.step > 0) {
        this.step -= 1;
        this.#good = 0;
      }
    } else {
      this.#poor = 0;
      this.#good = 0;
    }
    return STEPS[this.step];
  }
}

/** Apply a step to a video sender: encodings for full/reduced (audio only is the caller's). */
export async function applyStep(sender, step) {
  const parameters = sender.getParameters();
  if (!parameters.encodings || parameters.encodings.length === 0) {
    return;
  }
  for (const encoding of parameters.encodings) {
    if (step === "reduced") {
      encoding.scaleResolutionDownBy = 2;
      encoding.maxFramerate = 15;
      encoding.maxBitrate = 300_000;
    } else {
      delete encoding.scaleResolutionDownBy;
      delete encoding.maxFramerate;
      delete encoding.maxBitrate;
    }
  }
  await sender.setParameters(parameters);
}
