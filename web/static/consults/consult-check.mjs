/*
 * <section data-module="consult-check">: the pre-call network check of /consults/check.
 *
 * "Start check" takes the camera and microphone, connects to the server's echo peer
 * (POST /api/v1/consults/check, with the ICE servers of a call from
 * GET /api/v1/consults/check/ice, TURN included) and, for a few seconds, measures what comes
 * back: echoed video frames (the camera works end to end), the microphone's level (a WebAudio
 * AnalyserNode on the local track), the round trip of data channel pings, and the packet loss
 * and throughput of the echoed stream (getStats). Then a verdict in plain words.
 */
import { ApiError, fetchJson } from "../core/fetch.mjs";

const MEASURE_SECONDS = 8;
const GATHER_TIMEOUT_MS = 5000;
const CONNECT_TIMEOUT_MS = 20000;
const PING_EVERY_MS = 250;
const VIDEO_KBPS = 250;
const AUDIO_KBPS = 24;
const VIDEO_LOSS = 0.05;
const AUDIO_LOSS = 0.15;
const VIDEO_RTT_MS = 400;
const AUDIO_RTT_MS = 800;
const MIC_LEVEL = 0.01;

const MEDIA_WORDS = {
  NotAllowedError: "blocked: allow the camera and microphone for this site in the browser",
  SecurityError: "blocked by the browser",
  NotFoundError: "none found on this computer",
  OverconstrainedError: "none found on this computer",
  NotReadableError: "in use by another program, or not working",
  AbortError: "could not be started",
};

function words(error) {
  return MEDIA_WORDS[error && error.name] || "could not be started";
}

function sleep(ms) {
  return new Promise((resolve) => window.setTimeout(resolve, ms));
}

/** Resolve once ICE gathering is complete (aiortc does not trickle), or after the timeout. */
function gathered(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    window.setTimeout(resolve, timeoutMs);
  });
}

/** Resolve once connected; reject when the connection fails or the timeout passes. */
function connected(pc, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = window.setTimeout(
      () => reject(new Error("no route to the server's media, not even through the relay")),
      timeoutMs,
    );
    const check = () => {
      if (pc.connectionState === "connected") {
        window.clearTimeout(timer);
        resolve();
      } else if (pc.connectionState === "failed" || pc.connectionState === "closed") {
        window.clearTimeout(timer);
        reject(new Error("the network blocks the call's media (a firewall or proxy)"));
      }
    };
    pc.addEventListener("connectionstatechange", check);
    check();
  });
}

/** The echoed streams' counters, and the route, from one getStats(). */
async function counters(pc) {
  const totals = { at: performance.now(), bytes: 0, packets: 0, lost: 0, frames: 0, rtt: null, relay: false };
  const stats = await pc.getStats();
  const candidates = new Map();
  stats.forEach((report) => {
    if (report.type === "inbound-rtp") {
      totals.bytes += report.bytesReceived || 0;
      totals.packets += report.packetsReceived || 0;
      totals.lost += Math.max(0, report.packetsLost || 0);
      if (report.kind === "video") {
        totals.frames += report.framesDecoded || 0;
      }
    } else if (report.type === "local-candidate") {
      candidates.set(report.id, report.candidateType);
    }
  });
  stats.forEach((report) => {
    if (report.type === "candidate-pair" && report.nominated && report.state === "succeeded") {
      if (typeof report.currentRoundTripTime === "number") {
        totals.rtt = report.currentRoundTripTime * 1000;
      }
      totals.relay = candidates.get(report.localCandidateId) === "relay";
    }
  });
  return totals;
}

function median(values) {
  if (!values.length) {
    return null;
  }
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export default class ConsultCheck {
  static moduleName = "consult-check";

  #start;
  #preview;
  #echo;
  #note;
  #verdict;
  #progress;
  #seconds;
  #fields = {};
  #running = false;

  constructor(root) {
    this.#start = root.querySelector("[data-check-start]");
    this.#preview = root.querySelector("[data-check-preview]");
    this.#echo = root.querySelector("[data-check-echo]");
    this.#note = root.querySelector("[data-check-preview-note]");
    this.#verdict = root.querySelector("[data-check-verdict]");
    this.#progress = root.querySelector("[data-check-progress]");
    this.#seconds = root.querySelector("[data-check-seconds]");
    for (const field of root.querySelectorAll("[data-check]")) {
      this.#fields[field.dataset.check] = field;
    }
    this.#start.addEventListener("click", () => this.#run());
    this.#start.disabled = false;
  }

  #say(name, text) {
    this.#fields[name].textContent = text;
  }

  #conclude(level, text) {
    this.#verdict.dataset.level = level;
    this.#verdict.textContent = text;
  }

  async #run() {
    if (this.#running) {
      return;
    }
    this.#running = true;
    this.#start.disabled = true;
    for (const name of Object.keys(this.#fields)) {
      this.#say(name, "Checking…");
    }
    this.#conclude("", "Checking…");
    const held = { stream: null, pc: null, audio: null };
    try {
      const media = await this.#media();
      held.stream = media.stream;
      this.#preview.srcObject = media.stream;
      this.#note.textContent = media.camera ? "Your camera, as you send it." : "No camera picture.";
      const mic = media.microphone ? this.#listen(media.stream, held) : null;
      const found = await this.#measure(media, held, mic);
      this.#report(media, found, mic);
    } catch (error) {
      const reason = error instanceof ApiError ? error.message : error.message || String(error);
      for (const name of ["rtt", "loss", "throughput"]) {
        this.#say(name, "Not measured");
      }
      this.#conclude("bad", `Cannot connect: ${reason}`);
    } finally {
      this.#progress.hidden = true;
      if (held.pc) {
        held.pc.close();
      }
      if (held.audio) {
        held.audio.close().catch(() => {});
      }
      if (held.stream) {
        for (const track of held.stream.getTracks()) {
          track.stop();
        }
      }
      this.#preview.srcObject = null;
      this.#note.textContent = "The check has ended: your camera is off.";
      if (this.#echo) {
        this.#echo.srcObject = null;
      }
      this.#running = false;
      this.#start.disabled = false;
      this.#start.textContent = "Check again";
    }
  }

  /** The camera and microphone, each on its own when the other cannot be had. */
  async #media() {
    const video = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15 } };
    const found = { stream: new MediaStream(), camera: false, microphone: false, cameraError: null, microphoneError: null };
    try {
      const both = await navigator.mediaDevices.getUserMedia({ video, audio: true });
      both.getTracks().forEach((t) => found.stream.addTrack(t));
    } catch {
      for (const [kind, constraints] of [["camera", { video }], ["microphone", { audio: true }]]) {
        try {
          const one = await navigator.mediaDevices.getUserMedia(constraints);
          one.getTracks().forEach((t) => found.stream.addTrack(t));
        } catch (error) {
          found[`${kind}Error`] = words(error);
        }
      }
    }
    found.camera = found.stream.getVideoTracks().length > 0;
    found.microphone = found.stream.getAudioTracks().length > 0;
    this.#say("camera", found.camera ? "Checking…" : `Not working: ${found.cameraError}`);
    this.#say("microphone", found.microphone ? "Checking… say something" : `Not working: ${found.microphoneError}`);
    return found;
  }

  /** The microphone's loudest moment (RMS, 0–1) while the check runs. */
  #listen(stream, held) {
    const level = { peak: 0, timer: 0 };
    try {
      held.audio = new AudioContext();
      const analyser = held.audio.createAnalyser();
      analyser.fftSize = 2048;
      held.audio.createMediaStreamSource(stream).connect(analyser);
      const samples = new Float32Array(analyser.fftSize);
      level.timer = window.setInterval(() => {
        analyser.getFloatTimeDomainData(samples);
        let sum = 0;
        for (const s of samples) {
          sum += s * s;
        }
        level.peak = Math.max(level.peak, Math.sqrt(sum / samples.length));
      }, 50);
    } catch {
      level.peak = -1;
    }
    return level;
  }

  async #measure(media, held, mic) {
    const ice = await fetchJson("/api/v1/consults/check/ice");
    const pc = new RTCPeerConnection({ iceServers: ice.ice_servers });
    held.pc = pc;
    for (const track of media.stream.getTracks()) {
      pc.addTrack(track, media.stream);
    }
    pc.addEventListener("track", (event) => {
      if (event.track.kind === "video" && this.#echo) {
        this.#echo.srcObject = event.streams[0] || new MediaStream([event.track]);
      }
    });
    const channel = pc.createDataChannel("rtt", { ordered: false, maxRetransmits: 0 });
    const pings = [];
    channel.addEventListener("message", (event) => {
      try {
        const sent = JSON.parse(event.data).t;
        if (typeof sent === "number") {
          pings.push(performance.now() - sent);
        }
      } catch {
        // not one of ours
      }
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, GATHER_TIMEOUT_MS);
    const answer = await fetchJson("/api/v1/consults/check", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }),
    });
    await pc.setRemoteDescription(answer);
    await connected(pc, CONNECT_TIMEOUT_MS);
    const pinger = window.setInterval(() => {
      if (channel.readyState === "open") {
        channel.send(JSON.stringify({ t: performance.now() }));
      }
    }, PING_EVERY_MS);
    this.#progress.hidden = false;
    try {
      await sleep(1000); // let the echo start and the bandwidth estimate rise
      const first = await counters(pc);
      let last = first;
      for (let left = MEASURE_SECONDS; left > 0; left -= 1) {
        this.#seconds.textContent = `${left} s`;
        await sleep(1000);
        last = await counters(pc);
        this.#showNetwork(first, last, pings);
      }
      return { first, last, rtt: median(pings) ?? last.rtt, relay: last.relay, mic };
    } finally {
      window.clearInterval(pinger);
      if (mic) {
        window.clearInterval(mic.timer);
      }
    }
  }

  #figures(first, last) {
    const seconds = Math.max(0.001, (last.at - first.at) / 1000);
    const packets = last.packets - first.packets;
    const lost = last.lost - first.lost;
    return {
      kbps: ((last.bytes - first.bytes) * 8) / 1000 / seconds,
      loss: packets + lost > 0 ? lost / (packets + lost) : null,
      frames: last.frames,
    };
  }

  #showNetwork(first, last, pings) {
    const { kbps, loss } = this.#figures(first, last);
    const rtt = median(pings) ?? last.rtt;
    this.#say("rtt", rtt === null ? "Measuring…" : `${Math.round(rtt)} ms`);
    this.#say("loss", loss === null ? "Measuring…" : `${(loss * 100).toFixed(1)} %`);
    this.#say("throughput", `${Math.round(kbps)} kbit/s coming back`);
  }

  #report(media, found, mic) {
    const { kbps, loss, frames } = this.#figures(found.first, found.last);
    const rtt = found.rtt;
    this.#say("rtt", rtt === null ? "Not measured" : `${Math.round(rtt)} ms`);
    this.#say("loss", loss === null ? "Not measured" : `${(loss * 100).toFixed(1)} %`);
    const route = found.relay ? " (through the relay server)" : "";
    this.#say("throughput", `${Math.round(kbps)} kbit/s${route}`);
    const cameraOk = media.camera && frames > 0;
    if (media.camera) {
      const settings = media.stream.getVideoTracks()[0].getSettings();
      const size = settings.width && settings.height ? ` (${settings.width}×${settings.height})` : "";
      this.#say(
        "camera",
        cameraOk ? `Works${size}: your picture came back` : "Works here, but no picture came back through the network",
      );
    }
    const heard = mic && mic.peak > MIC_LEVEL;
    if (media.microphone) {
      this.#say(
        "microphone",
        heard
          ? `Works: sound picked up (loudest ${Math.round(mic.peak * 100)} %)`
          : "No sound picked up: is it muted, or the wrong microphone?",
      );
    }
    const lossy = loss === null ? 1 : loss;
    const slow = rtt === null ? Infinity : rtt;
    if (cameraOk && kbps >= VIDEO_KBPS && lossy < VIDEO_LOSS && slow < VIDEO_RTT_MS) {
      this.#conclude("good", "Good for video");
    } else if (kbps >= AUDIO_KBPS && lossy < AUDIO_LOSS && slow < AUDIO_RTT_MS) {
      const why = !media.camera
        ? "no camera"
        : !cameraOk
          ? "no picture came back"
          : "the connection is too weak for video";
      this.#conclude("fair", `Audio only recommended: ${why}`);
    } else if (!media.camera && !media.microphone) {
      this.#conclude("bad", "Cannot connect: no camera or microphone can be used");
    } else {
      this.#conclude("bad", "Cannot connect: the connection is too weak even for audio");
    }
  }
}
