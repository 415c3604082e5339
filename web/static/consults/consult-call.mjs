/*
 * <section data-module="consult-call" data-consult-id data-role data-name data-other>: the call
 * page. Pre-join (camera preview, devices, microphone level, one Join button), the lobby, the
 * host's admissions, a video tile per remote peer, controls (mute, camera, screen share, leave,
 * end), chat, a timer, and a network-quality indicator that steps down to reduced video and then
 * audio only on a poor link. Heals itself: the signaling socket reconnects (SignalChannel), each
 * link restarts ICE when it fails or the network changes (PeerLink), and a peer that comes back
 * under a new peer id keeps its RTCPeerConnection when it is the same one (same DTLS
 * fingerprint). A page that reloads during the call joins again by itself (sessionStorage).
 */
import { fetchJson } from "../core/fetch.mjs";
import { BandwidthSteps, applyStep, describe, level, sample } from "./call-quality.mjs";
import { PeerLink } from "./peer-link.mjs";
import { SharedView } from "./shared-view.mjs";
import { SignalChannel, signalUrl } from "./signal-channel.mjs";

const STATS_MS = 2000;
const DETACHED_MS = 20_000;
const ICE_SPARE_MS = 60_000;
/** TURN credentials fetched with the page are fetched again at Join when they expire sooner. */
const STATUS = {
  connecting: "Connecting to the call…",
  retrying: (s) => `The connection to the call dropped; trying again in ${s} s. Stay on this page.`,
  ended: "The consult has ended.",
  closed: "You left the call.",
};

/** A point of the call's timeline (performance marks "call:<name>", once each; the benchmark reads them). */
function mark(name) {
  if (!performance.getEntriesByName(`call:${name}`, "mark").length) {
    performance.mark(`call:${name}`);
  }
}

function fingerprint(sdp) {
  const found = /^a=fingerprint:(.+)$/im.exec(sdp || "");
  return found ? found[1].trim().toLowerCase() : "";
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}

export default class ConsultCall {
  static moduleName = "consult-call";

  #root;
  #id;
  #role;
  #name;
  #el = {};
  #stream = new MediaStream();
  #screen = null;
  #channel = null;
  #config = {};
  #me = "";
  #firstPeers = false;
  #inRoom = false;
  #peers = [];
  #links = new Map();
  #detached = new Map();
  #tiles = new Map();
  #steps = new BandwidthSteps();
  #step = "full";
  #previous = new Map();
  #since = 0;
  #timers = [];
  #audio = null;
  #ice = Promise.resolve(null);
  #sink = "";

  constructor(root) {
    this.#root = root;
    this.#id = root.dataset.consultId;
    this.#role = root.dataset.role;
    this.#name = root.dataset.name;
    const q = (selector) => root.querySelector(selector);
    this.#el = {
      status: q("[data-call-status]"),
      videos: q("[data-call-videos]"),
      empty: q("[data-call-empty]"),
      preview: q("[data-call-preview]"),
      prejoin: q("[data-call-prejoin]"),
      join: q("[data-call-join]"),
      level: q("[data-call-level]"),
      lobby: q("[data-call-lobby]"),
      knocks: q("[data-call-knocks]"),
      knockList: q("[data-call-knock-list]"),
      controls: q("[data-call-controls]"),
      mute: q("[data-call-mute]"),
      camera: q("[data-call-camera]"),
      share: q("[data-call-share]"),
      timer: q("[data-call-timer]"),
      quality: q("[data-call-quality]"),
      recording: q("[data-call-recording]"),
      leave: q("[data-call-leave]"),
      end: q("[data-call-end]"),
      people: q("[data-call-people]"),
      messages: q("[data-call-messages]"),
      chat: q("[data-call-chat-form]"),
      confirm: q("[data-call-confirm]"),
    };
    const liveAt = Date.parse(root.dataset.liveAt || "");
    this.#since = Number.isNaN(liveAt) ? 0 : liveAt;
    this.#wire();
    this.#shareViews();
    this.#prepare();
  }

  // Shared viewing (shared-view.mjs) hears the room and its view messages as events on the
  // root, and sends a view state with a doorstep:call-view-send event (detail: the state).
  #shareViews() {
    this.#root.addEventListener("doorstep:call-view-send", (event) => {
      this.#channel?.send({ type: "view", state: event.detail });
    });
    new SharedView(this.#root);
  }

  get #joinedKey() {
    return `doorstep.call.${this.#id}`;
  }

  // Pre-join ---------------------------------------------------------------------------

  async #prepare() {
    mark("start");
    this.#ice = this.#fetchIce();
    await this.#openMedia({});
    mark("media");
    await this.#listDevices();
    navigator.mediaDevices?.addEventListener?.("devicechange", () => this.#listDevices());
    this.#el.join.disabled = false;
    mark("ready");
    if (window.sessionStorage.getItem(this.#joinedKey) === "yes") {
      this.#join();
    } else if (this.#stream.getTracks().length) {
      this.#say("Check your picture and sound, then press Join.");
    }
  }

  async #openMedia({ video, audio }) {
    const constraints = {
      audio: audio ? { deviceId: { exact: audio } } : true,
      video: video
        ? { deviceId: { exact: video }, width: { ideal: 1280 }, height: { ideal: 720 } }
        : { width: { ideal: 1280 }, height: { ideal: 720 } },
    };
    let stream = null;
    let problem = "";
    try {
      stream = await navigator.mediaDevices.getUserMedia(constraints);
    } catch (error) {
      problem = error && error.name === "NotAllowedError"
        ? "The browser was not allowed to use your camera and microphone."
        : "Your camera could not be opened.";
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: constraints.audio });
      } catch {
        stream = null;
      }
    }
    const old = this.#stream;
    this.#stream = stream || new MediaStream();
    this.#el.preview.srcObject = this.#stream;
    for (const track of this.#stream.getTracks()) {
      for (const link of this.#links.values()) {
        if (!this.#screen || track.kind !== "video") {
          link.replaceTrack(track.kind, this.#step === "audio" && track.kind === "video" ? null : track);
        }
        link.tracks = this.#stream.getTracks();
      }
    }
    for (const track of old.getTracks()) {
      track.stop();
    }
    this.#meter();
    if (!stream) {
      this.#say(`${problem || "No camera or microphone was found."} You can still join to listen and chat.`, "warning");
    } else if (problem) {
      this.#say(`${problem} You can join with sound only.`, "warning");
    }
  }

  async #listDevices() {
    let devices = [];
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch {
      return;
    }
    const current = {
      videoinput: this.#stream.getVideoTracks()[0]?.getSettings().deviceId,
      audioinput: this.#stream.getAudioTracks()[0]?.getSettings().deviceId,
      audiooutput: this.#sink,
    };
    for (const select of this.#root.querySelectorAll("[data-call-device]")) {
      const kind = select.dataset.callDevice;
      const mine = devices.filter((d) => d.kind === kind && d.deviceId);
      select.replaceChildren();
      if (kind === "audiooutput" && !("setSinkId" in HTMLMediaElement.prototype)) {
        select.append(new Option("The system's default", ""));
        select.disabled = true;
        continue;
      }
      if (!mine.length) {
        select.append(new Option(kind === "audiooutput" ? "The system's default" : "None found", ""));
        select.disabled = true;
        continue;
      }
      mine.forEach((device, index) => {
        const label = device.label || `${kind === "videoinput" ? "Camera" : kind === "audioinput" ? "Microphone" : "Speaker"} ${index + 1}`;
        select.append(new Option(label, device.deviceId, false, device.deviceId === current[kind]));
      });
      select.disabled = false;
    }
  }

  #meter() {
    const track = this.#stream.getAudioTracks()[0];
    if (!track || !window.AudioContext) {
      return;
    }
    try {
      this.#audio?.context.close();
      const context = new AudioContext();
      const analyser = context.createAnalyser();
      analyser.fftSize = 512;
      context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
      const data = new Uint8Array(analyser.fftSize);
      this.#audio = { context, analyser, data };
    } catch {
      this.#audio = null;
    }
  }

  #readLevel() {
    const audio = this.#audio;
    if (!audio) {
      return;
    }
    audio.analyser.getByteTimeDomainData(audio.data);
    let peak = 0;
    for (const value of audio.data) {
      peak = Math.max(peak, Math.abs(value - 128) / 128);
    }
    this.#el.level.value = Math.min(1, peak * 2);
  }

  // Joining ----------------------------------------------------------------------------

  async #join() {
    mark("join");
    this.#el.join.disabled = true;
    this.#audio?.context.resume?.();
    window.sessionStorage.setItem(this.#joinedKey, "yes");
    let ice = await this.#ice;
    if (!ice || Date.parse(ice.expires_at) - Date.now() < ICE_SPARE_MS) {
      ice = await this.#fetchIce(); // fetched while the page opened; again if it failed or is old
    }
    if (ice && ice.ended) {
      this.#ended();
      return;
    }
    this.#config = ice
      ? {
          iceServers: ice.ice_servers,
          iceTransportPolicy: ice.ice_transport_policy === "relay" ? "relay" : "all",
        }
      : { iceServers: [] };
    this.#el.prejoin.hidden = true;
    this.#channel = new SignalChannel(signalUrl(this.#id), {
      onMessage: (message) => this.#message(message),
      onState: (state, detail) => this.#socketState(state, detail),
    });
    this.#channel.start();
  }

  /** The call's ICE servers (null if they could not be had; {ended} for a call that is over). */
  async #fetchIce() {
    try {
      return await fetchJson(`/api/v1/consults/${this.#id}/ice`);
    } catch (error) {
      return error.status === 409 || error.status === 404 ? { ended: true } : null;
    }
  }

  #socketState(state, detail) {
    this.#root.dataset.signal = state;
    if (state === "retrying") {
      this.#inRoom = false;
      this.#say(STATUS.retrying(detail), "warning");
      this.#checkEnded();
    } else if (state === "connecting") {
      if (!this.#inRoom) {
        this.#say(STATUS.connecting);
      }
    } else if (state === "ended") {
      this.#ended();
    } else if (state === "replaced") {
      window.sessionStorage.removeItem(this.#joinedKey);
      this.#closeLinks();
      this.#el.controls.hidden = true;
      this.#setChat(false);
      this.#say("You joined this call from another window or connection; it continues there.", "info");
    }
  }

  async #checkEnded() {
    try {
      const consult = await fetchJson(`/api/v1/consults/${this.#id}`);
      if (!["accepted", "live"].includes(consult.status)) {
        this.#channel?.stop("ended");
      }
    } catch (error) {
      // A guest may not read the consult (401): their call page says whether it still works.
      if (error.status === 404 || (error.status === 401 && this.#role === "guest")) {
        this.#guestGone(error.status);
      }
    }
  }

  async #guestGone(status) {
    if (status === 404) {
      this.#channel?.stop("ended");
      return;
    }
    try {
      const page = await fetch(window.location.pathname, { credentials: "same-origin" });
      if (page.status === 410 || page.status === 404) {
        this.#channel?.stop("ended");
      }
    } catch {
      // offline: the socket keeps trying
    }
  }

  #message(message) {
    switch (message.type) {
      case "welcome":
        mark("welcome");
        this.#me = message.peer;
        this.#firstPeers = true;
        this.#say("Connected. Waiting to enter the call…");
        break;
      case "lobby":
        this.#el.lobby.hidden = false;
        this.#el.controls.hidden = true;
        this.#say("You are in the waiting room.", "warning");
        break;
      case "knock":
        this.#knock(message.peer, message.name);
        break;
      case "peers":
        this.#present(Array.isArray(message.peers) ? message.peers : []);
        break;
      case "offer":
      case "answer":
      case "candidate":
        this.#signal(message);
        break;
      case "chat":
        this.#chatLine(this.#nameOf(message.from), message.text);
        break;
      case "view":
        this.#root.dispatchEvent(new CustomEvent("doorstep:call-view", { detail: message }));
        break;
      case "error":
        if (message.code !== "ended" && message.code !== "replaced") {
          this.#say(message.message || "The call refused a message.", "warning");
        }
        break;
      default:
        break;
    }
  }

  // The room ---------------------------------------------------------------------------

  #present(peers) {
    mark("in-room");
    this.#peers = peers;
    const wasInRoom = this.#inRoom;
    this.#inRoom = true;
    this.#el.lobby.hidden = true;
    this.#el.controls.hidden = false;
    this.#setChat(true);
    const others = peers.filter((p) => p.peer !== this.#me);
    const ids = new Set(others.map((p) => p.peer));
    for (const item of this.#el.knockList.querySelectorAll("[data-peer]")) {
      if (ids.has(item.dataset.peer)) {
        item.remove();
      }
    }
    this.#el.knocks.hidden = !this.#el.knockList.children.length;
    if (this.#firstPeers) {
      this.#firstPeers = false;
      for (const other of others) {
        const link = this.#links.get(other.peer);
        if (link) {
          link.renegotiate();
        } else {
          this.#link(other, true);
        }
      }
    }
    for (const [peer, link] of [...this.#links]) {
      if (!ids.has(peer)) {
        this.#detach(link);
      }
    }
    this.#people(peers);
    const recording = peers.some((p) => p.role === "recorder");
    this.#el.recording.hidden = !recording;
    const people = others.filter((p) => p.role !== "recorder");
    if (people.length && !this.#since) {
      this.#since = Date.now();
    }
    this.#say(
      people.length
        ? `In the call with ${people.map((p) => p.name).join(", ")}.`
        : "You are in the call. Waiting for the others to join…",
      people.length ? "success" : "info",
    );
    if (!wasInRoom) {
      this.#el.mute.focus({ preventScroll: true });
    }
  }

  #polite(other) {
    if (this.#role === "host") {
      return false;
    }
    return other.role === "host" || this.#me < other.peer;
  }

  #link(other, initiator) {
    const recorder = other.role === "recorder";
    const link = new PeerLink({
      peer: other.peer,
      name: other.name,
      role: other.role,
      polite: this.#polite(other),
      initiator,
      config: this.#config,
      tracks: this.#sendingTracks(),
      stream: this.#stream,
      send: (message) => this.#channel?.send(message),
      // The server's recorder sends nothing and is shown by the Recording badge, not a tile.
      onTrack: (stream) => recorder || this.#tile(link).show(stream),
      onState: (state) => {
        if (state === "connected" && !recorder) {
          mark("connected");
        }
        return recorder || this.#tile(link).state(state);
      },
    });
    this.#links.set(other.peer, link);
    if (!recorder) {
      this.#tile(link);
    }
    return link;
  }

  #sendingTracks() {
    const tracks = this.#stream.getAudioTracks().slice(0, 1);
    const video = this.#screen || this.#stream.getVideoTracks()[0];
    if (video) {
      tracks.push(video);
    }
    return tracks;
  }

  #signal(message) {
    mark(`first-${message.type}`);
    let link = this.#links.get(message.from);
    if (!link && message.type === "offer") {
      const other = this.#peers.find((p) => p.peer === message.from) || {
        peer: message.from,
        name: "Someone",
        role: "participant",
      };
      link = this.#reclaim(other, message.sdp) || this.#link(other, false);
    }
    link?.receive(message);
  }

  /** A link of the same person whose peer id went away, if the offer is from the same connection. */
  #reclaim(other, sdp) {
    const wanted = fingerprint(sdp);
    const present = new Set(this.#peers.map((p) => p.peer));
    const candidates = [
      ...[...this.#detached.values()].map((held) => held.link),
      ...[...this.#links.values()].filter((l) => !present.has(l.peer)),
    ];
    for (const link of candidates) {
      if (link.name !== other.name || link.role !== other.role) {
        continue;
      }
      const same = wanted && fingerprint(link.pc.remoteDescription?.sdp) === wanted;
      this.#forget(link, { close: !same });
      if (same) {
        this.#links.set(other.peer, link);
        this.#tiles.set(other.peer, this.#tiles.get(link.peer));
        this.#tiles.delete(link.peer);
        link.rename(other.peer);
        this.#tiles.get(other.peer)?.state(link.state);
        return link;
      }
    }
    return null;
  }

  #detach(link) {
    this.#links.delete(link.peer);
    const timer = window.setTimeout(() => this.#forget(link, { close: true }), DETACHED_MS);
    this.#detached.set(link.peer, { link, timer });
    this.#tiles.get(link.peer)?.state("away");
  }

  #forget(link, { close }) {
    const held = this.#detached.get(link.peer);
    if (held) {
      window.clearTimeout(held.timer);
      this.#detached.delete(link.peer);
    }
    if (this.#links.get(link.peer) === link) {
      this.#links.delete(link.peer);
    }
    if (close) {
      link.close();
      this.#tiles.get(link.peer)?.remove();
      this.#tiles.delete(link.peer);
      this.#previous.delete(link);
      this.#el.empty.hidden = this.#tiles.size > 0;
    }
  }

  #nameOf(peer) {
    if (peer === this.#me) {
      return this.#name;
    }
    return this.#peers.find((p) => p.peer === peer)?.name || "Someone";
  }

  // Tiles, people, knocks --------------------------------------------------------------

  #tile(link) {
    let tile = this.#tiles.get(link.peer);
    if (!tile) {
      tile = new RemoteTile(link.name, this.#sink);
      this.#tiles.set(link.peer, tile);
      this.#el.videos.append(tile.element);
      this.#el.empty.hidden = true;
    }
    return tile;
  }

  #people(peers) {
    this.#root.dispatchEvent(new CustomEvent("doorstep:call-peers", { detail: { me: this.#me, peers } }));
    const list = this.#el.people;
    list.replaceChildren();
    for (const peer of peers) {
      const item = document.createElement("li");
      const role = { host: "host", guest: "guest", recorder: "recording the call" }[peer.role] || "clinic";
      item.textContent = `${peer.name} (${peer.peer === this.#me ? "you, " : ""}${role})`;
      list.append(item);
    }
  }

  #knock(peer, name) {
    if (this.#el.knockList.querySelector(`[data-peer="${CSS.escape(peer)}"]`)) {
      return;
    }
    const item = document.createElement("li");
    item.dataset.peer = peer;
    const label = document.createElement("span");
    label.textContent = `${name} is waiting.`;
    const admit = document.createElement("button");
    admit.type = "button";
    admit.className = "button button-primary button-small";
    admit.textContent = `Let ${name} in`;
    admit.addEventListener("click", () => {
      admit.disabled = true;
      this.#channel?.send({ type: "admit", peer });
    });
    item.append(label, " ", admit);
    this.#el.knockList.append(item);
    this.#el.knocks.hidden = false;
    this.#say(`${name} is waiting to come in.`, "warning");
  }

  // Controls ---------------------------------------------------------------------------

  #wire() {
    const el = this.#el;
    el.join.addEventListener("click", () => this.#join());
    for (const select of this.#root.querySelectorAll("[data-call-device]")) {
      select.addEventListener("change", () => this.#device(select));
    }
    el.mute.addEventListener("click", () => {
      const muted = el.mute.getAttribute("aria-pressed") !== "true";
      for (const track of this.#stream.getAudioTracks()) {
        track.enabled = !muted;
      }
      el.mute.setAttribute("aria-pressed", String(muted));
      el.mute.textContent = muted ? "Unmute" : "Mute";
    });
    el.camera.addEventListener("click", () => {
      const off = el.camera.getAttribute("aria-pressed") !== "true";
      for (const track of this.#stream.getVideoTracks()) {
        track.enabled = !off;
      }
      el.camera.setAttribute("aria-pressed", String(off));
      el.camera.textContent = off ? "Camera on" : "Camera off";
    });
    if (!navigator.mediaDevices?.getDisplayMedia) {
      el.share.hidden = true;
    }
    el.share.addEventListener("click", () => (this.#screen ? this.#stopShare() : this.#share()));
    el.leave.addEventListener("click", () => this.#leave());
    if (el.end && el.confirm) {
      // A guest has neither: only the doctors end a consult.
      el.end.addEventListener("click", () => el.confirm.showModal());
      const cancel = this.#root.querySelector("[data-call-confirm-cancel]");
      cancel.addEventListener("click", () => el.confirm.close());
      const confirmed = this.#root.querySelector("[data-call-confirm-end]");
      confirmed.addEventListener("click", () => this.#end());
    }
    el.chat.addEventListener("submit", (event) => {
      event.preventDefault();
      const input = el.chat.elements.text;
      const text = input.value.trim();
      if (!text || !this.#channel) {
        return;
      }
      this.#channel.send({ type: "chat", text });
      this.#chatLine(this.#name, text);
      input.value = "";
    });
    window.addEventListener("online", () => this.#networkChanged());
    navigator.connection?.addEventListener?.("change", () => this.#networkChanged());
    this.#timers.push(window.setInterval(() => this.#tick(), 1000));
    this.#timers.push(window.setInterval(() => this.#measure(), STATS_MS));
    this.#timers.push(window.setInterval(() => this.#readLevel(), 100));
  }

  async #device(select) {
    const kind = select.dataset.callDevice;
    if (kind === "audiooutput") {
      this.#sink = select.value;
      for (const tile of this.#tiles.values()) {
        tile.sink(this.#sink);
      }
      return;
    }
    const wanted = {
      video: this.#root.querySelector('[data-call-device="videoinput"]').value,
      audio: this.#root.querySelector('[data-call-device="audioinput"]').value,
    };
    await this.#openMedia(wanted);
  }

  async #share() {
    let screen;
    try {
      screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
    } catch {
      this.#say("Screen sharing was cancelled.", "info");
      return;
    }
    this.#screen = screen.getVideoTracks()[0];
    this.#screen.addEventListener("ended", () => this.#stopShare());
    for (const link of this.#links.values()) {
      await link.replaceTrack("video", this.#screen);
    }
    this.#el.preview.srcObject = screen;
    this.#el.share.setAttribute("aria-pressed", "true");
    this.#el.share.textContent = "Stop sharing";
  }

  async #stopShare() {
    const screen = this.#screen;
    this.#screen = null;
    screen?.stop();
    const camera = this.#step === "audio" ? null : this.#stream.getVideoTracks()[0] || null;
    for (const link of this.#links.values()) {
      await link.replaceTrack("video", camera);
    }
    this.#el.preview.srcObject = this.#stream;
    this.#el.share.setAttribute("aria-pressed", "false");
    this.#el.share.textContent = "Share screen";
  }

  #networkChanged() {
    if (this.#channel?.open) {
      for (const link of this.#links.values()) {
        link.restartIce();
      }
    }
  }

  #leave() {
    window.sessionStorage.removeItem(this.#joinedKey);
    this.#channel?.leave();
    this.#channel = null;
    this.#closeLinks();
    this.#inRoom = false;
    this.#el.controls.hidden = true;
    this.#el.lobby.hidden = true;
    this.#el.knocks.hidden = true;
    this.#el.prejoin.hidden = false;
    this.#el.join.disabled = false;
    this.#el.join.textContent = "Join again";
    this.#setChat(false);
    this.#people([]);
    this.#say(STATUS.closed);
  }

  async #end() {
    this.#el.confirm.close();
    try {
      await fetchJson(`/api/v1/consults/${this.#id}/end`, { method: "POST" });
    } catch (error) {
      this.#say(`The consult could not be ended: ${error.message}`, "danger");
      return;
    }
    this.#channel?.stop("ended");
  }

  #ended() {
    window.sessionStorage.removeItem(this.#joinedKey);
    this.#closeLinks();
    this.#el.controls.hidden = true;
    this.#el.lobby.hidden = true;
    this.#el.prejoin.hidden = true;
    this.#setChat(false);
    for (const track of this.#stream.getTracks()) {
      track.stop();
    }
    this.#root.dataset.ended = "yes";
    this.#say(STATUS.ended, "info");
    const record = document.createElement("a");
    record.href = window.location.pathname;
    record.textContent = " See the consult record.";
    this.#el.status.append(record);
  }

  #closeLinks() {
    for (const link of [...this.#links.values(), ...[...this.#detached.values()].map((d) => d.link)]) {
      this.#forget(link, { close: true });
    }
  }

  #setChat(enabled) {
    for (const control of this.#el.chat.querySelectorAll("input, button")) {
      control.disabled = !enabled;
    }
  }

  #chatLine(name, text) {
    const item = document.createElement("li");
    const who = document.createElement("strong");
    who.textContent = name;
    const when = document.createElement("span");
    when.className = "muted";
    when.textContent = ` ${new Date().toISOString().slice(11, 16)}`;
    const body = document.createElement("p");
    body.textContent = text;
    item.append(who, when, body);
    this.#el.messages.append(item);
    item.scrollIntoView({ block: "nearest" });
  }

  #say(text, tone = "info") {
    this.#el.status.textContent = text;
    this.#el.status.className = `alert alert-${tone} call-status`;
  }

  #tick() {
    if (this.#since && this.#inRoom) {
      this.#el.timer.textContent = clock((Date.now() - this.#since) / 1000);
    }
  }

  // Quality ----------------------------------------------------------------------------

  async #measure() {
    let worst = null;
    for (const link of this.#links.values()) {
      if (link.pc.connectionState !== "connected") {
        continue;
      }
      let report;
      try {
        report = await link.pc.getStats();
      } catch {
        continue;
      }
      const figures = sample(report, this.#previous.get(link));
      this.#previous.set(link, figures.counters);
      this.#tiles.get(link.peer)?.frames(figures.frames, figures.route);
      if (figures.kbps === null) {
        continue;
      }
      const verdict = level(figures);
      const rank = { good: 0, fair: 1, poor: 2 }[verdict];
      if (!worst || rank > worst.rank) {
        worst = { rank, verdict, figures };
      }
    }
    if (!worst) {
      return;
    }
    const step = this.#steps.next(worst.verdict);
    const badge = this.#el.quality;
    badge.dataset.level = worst.verdict;
    const words = { good: "good", fair: "fair", poor: "poor" }[worst.verdict];
    const mode = step === "reduced" ? " · reduced video" : step === "audio" ? " · audio only" : "";
    badge.textContent = `Connection: ${words} (${describe(worst.figures)})${mode}`;
    if (step !== this.#step) {
      await this.#applyStep(step);
    }
  }

  async #applyStep(step) {
    const before = this.#step;
    this.#step = step;
    const camera = this.#screen || this.#stream.getVideoTracks()[0] || null;
    for (const link of this.#links.values()) {
      if (step === "audio") {
        await link.replaceTrack("video", null);
      } else {
        if (before === "audio") {
          await link.replaceTrack("video", camera);
        }
        for (const sender of link.senders("video")) {
          await applyStep(sender, step).catch(() => {});
        }
      }
    }
    this.#say(
      step === "audio"
        ? "The connection is poor: video is paused and the call continues with sound only."
        : step === "reduced"
          ? "The connection is weak: your video is sent at a lower quality."
          : "The connection is good again: full video.",
      step === "full" ? "success" : "warning",
    );
  }
}

/** One remote peer's video tile: the video, the name, the connection state, frames decoded. */
class RemoteTile {
  constructor(name, sink) {
    this.element = document.createElement("figure");
    this.element.className = "call-tile";
    this.video = document.createElement("video");
    this.video.autoplay = true;
    this.video.playsInline = true;
    this.caption = document.createElement("figcaption");
    this.label = document.createElement("span");
    this.label.textContent = name;
    this.badge = document.createElement("span");
    this.badge.className = "call-tile-state";
    this.caption.append(this.label, " ", this.badge);
    this.element.append(this.video, this.caption);
    this.element.dataset.framesDecoded = "0";
    this.sink(sink);
  }

  show(stream) {
    if (this.video.srcObject !== stream) {
      this.video.srcObject = stream;
      this.video.requestVideoFrameCallback?.(() => mark("first-frame"));
    }
    this.video.play().catch(() => {
      this.video.muted = true;
      this.video.play().catch(() => {});
      this.#offerSound();
    });
  }

  #offerSound() {
    if (this.element.querySelector("button")) {
      return;
    }
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button-primary button-small";
    button.textContent = "Turn on sound";
    button.addEventListener("click", () => {
      this.video.muted = false;
      this.video.play().catch(() => {});
      button.remove();
    });
    this.caption.append(" ", button);
  }

  sink(id) {
    if (id && this.video.setSinkId) {
      this.video.setSinkId(id).catch(() => {});
    }
  }

  state(state) {
    const words = {
      new: "connecting…",
      connecting: "connecting…",
      connected: "",
      disconnected: "reconnecting…",
      failed: "reconnecting…",
      away: "reconnecting…",
      closed: "left",
    };
    this.badge.textContent = words[state] ?? "";
    this.element.dataset.state = state;
  }

  frames(count, route) {
    this.element.dataset.framesDecoded = String(count);
    this.element.dataset.route = route || "";
  }

  remove() {
    this.video.srcObject = null;
    this.element.remove();
  }
}
