/*
 * The kiosk's video call: the same signaling socket and peer links as the call page
 * (signal-channel.mjs, peer-link.mjs: join, welcome, peers, perfect negotiation), with none of
 * its pre-join: the kiosk is admitted at once, so it opens the camera and joins. The doctor's
 * video is large, the person's own small; mute, camera and "End call" are the kiosk screen's
 * buttons. Each remote tile carries data-frames-decoded (from getStats), as on the call page.
 * Nothing is kept in any storage: a reload is a new visit.
 */
import { fetchJson } from "../core/fetch.mjs";
import { PeerLink } from "../consults/peer-link.mjs";
import { SignalChannel, signalUrl } from "../consults/signal-channel.mjs";

const STATS_MS = 1000;

export class KioskCall {
  #id;
  #root;
  #say;
  #onEnded;
  #stream = new MediaStream();
  #channel = null;
  #config = { iceServers: [] };
  #me = "";
  #firstPeers = false;
  #peers = [];
  #links = new Map();
  #tiles = new Map();
  #timer = 0;
  #stopped = false;

  /**
   * root: the call screen (with [data-call-remote], [data-call-self], [data-call-mute],
   * [data-call-camera]); say(key) shows a status (connecting, live, waiting, retrying,
   * no-camera); onEnded() once the consult has ended.
   */
  constructor({ root, consultId, say, onEnded }) {
    this.#root = root;
    this.#id = consultId;
    this.#say = say;
    this.#onEnded = onEnded;
    this.remote = root.querySelector("[data-call-remote]");
    this.own = root.querySelector("[data-call-self]");
  }

  get stream() {
    return this.#stream;
  }

  async start() {
    this.#say("connecting");
    const [media, ice] = await Promise.all([this.#openMedia(), this.#fetchIce()]);
    if (this.#stopped) {
      media?.getTracks().forEach((t) => t.stop());
      return;
    }
    this.#stream = media || new MediaStream();
    this.own.srcObject = this.#stream;
    if (!media || !media.getVideoTracks().length) {
      this.#say("no-camera");
    }
    if (ice && ice.ended) {
      this.#end();
      return;
    }
    if (ice) {
      this.#config = {
        iceServers: ice.ice_servers || [],
        iceTransportPolicy: ice.ice_transport_policy === "relay" ? "relay" : "all",
      };
    }
    this.#channel = new SignalChannel(signalUrl(this.#id), {
      onMessage: (message) => this.#message(message),
      onState: (state) => this.#state(state),
    });
    this.#channel.start();
    this.#timer = window.setInterval(() => this.#measure(), STATS_MS);
  }

  /** Mute or unmute the microphone; returns whether it is now muted. */
  toggleMute() {
    const tracks = this.#stream.getAudioTracks();
    const muted = tracks.every((t) => t.enabled);
    for (const track of tracks) {
      track.enabled = !muted;
    }
    return muted;
  }

  /** Turn the camera off or on; returns whether it is now off. */
  toggleCamera() {
    const tracks = this.#stream.getVideoTracks();
    const off = tracks.every((t) => t.enabled);
    for (const track of tracks) {
      track.enabled = !off;
    }
    return off;
  }

  /** Leave the call and let go of the camera and the microphone. */
  stop() {
    if (this.#stopped) {
      return;
    }
    this.#stopped = true;
    window.clearInterval(this.#timer);
    this.#channel?.leave();
    this.#channel = null;
    for (const link of this.#links.values()) {
      link.close();
    }
    this.#links.clear();
    for (const tile of this.#tiles.values()) {
      tile.remove();
    }
    this.#tiles.clear();
    for (const track of this.#stream.getTracks()) {
      track.stop();
    }
    this.own.srcObject = null;
  }

  async #openMedia() {
    const video = { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: "user" };
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true, video });
    } catch {
      try {
        return await navigator.mediaDevices.getUserMedia({ audio: true });
      } catch {
        return null;
      }
    }
  }

  async #fetchIce() {
    try {
      return await fetchJson(`/api/v1/consults/${this.#id}/ice`);
    } catch (error) {
      return error.status === 409 || error.status === 404 ? { ended: true } : null;
    }
  }

  #state(state) {
    this.#root.dataset.signal = state;
    if (state === "retrying") {
      this.#say("retrying");
    } else if (state === "ended") {
      this.#end();
    }
  }

  #end() {
    if (this.#stopped) {
      return;
    }
    this.stop();
    this.#onEnded();
  }

  #message(message) {
    switch (message.type) {
      case "welcome":
        this.#me = message.peer;
        this.#firstPeers = true;
        break;
      case "peers":
        this.#present(Array.isArray(message.peers) ? message.peers : []);
        break;
      case "offer":
      case "answer":
      case "candidate":
        this.#signal(message);
        break;
      default:
        break;
    }
  }

  #present(peers) {
    this.#peers = peers;
    const others = peers.filter((p) => p.peer !== this.#me && p.role !== "recorder");
    const ids = new Set(others.map((p) => p.peer));
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
        link.close();
        this.#links.delete(peer);
        this.#tiles.get(peer)?.remove();
        this.#tiles.delete(peer);
      }
    }
    this.#say(others.length ? "live" : "waiting");
  }

  #polite(other) {
    return other.role === "host" || this.#me < other.peer;
  }

  #link(other, initiator) {
    const tracks = [
      ...this.#stream.getAudioTracks().slice(0, 1),
      ...this.#stream.getVideoTracks().slice(0, 1),
    ];
    const link = new PeerLink({
      peer: other.peer,
      name: other.name,
      role: other.role,
      polite: this.#polite(other),
      initiator,
      config: this.#config,
      tracks,
      stream: this.#stream,
      send: (message) => this.#channel?.send(message),
      onTrack: (stream) => this.#tile(link.peer, other.name).show(stream),
      onState: (state) => this.#tile(link.peer, other.name).state(state),
    });
    this.#links.set(other.peer, link);
    this.#tile(other.peer, other.name);
    return link;
  }

  #signal(message) {
    let link = this.#links.get(message.from);
    if (!link && message.type === "offer") {
      const other = this.#peers.find((p) => p.peer === message.from) || {
        peer: message.from,
        name: "",
        role: "host",
      };
      link = this.#link(other, false);
    }
    link?.receive(message);
  }

  #tile(peer, name) {
    let tile = this.#tiles.get(peer);
    if (!tile) {
      tile = new Tile(name);
      this.#tiles.set(peer, tile);
      this.remote.append(tile.element);
    }
    return tile;
  }

  async #measure() {
    for (const [peer, link] of this.#links) {
      if (link.pc.connectionState !== "connected") {
        continue;
      }
      let frames = 0;
      try {
        const report = await link.pc.getStats();
        report.forEach((entry) => {
          if (entry.type === "inbound-rtp" && entry.kind === "video") {
            frames += entry.framesDecoded || 0;
          }
        });
      } catch {
        continue;
      }
      this.#tiles.get(peer)?.frames(frames);
    }
  }
}

/** The doctor's video: large, with their name; data-frames-decoded for the tests. */
class Tile {
  constructor(name) {
    this.element = document.createElement("figure");
    this.element.className = "kiosk-call-tile";
    this.element.dataset.framesDecoded = "0";
    this.video = document.createElement("video");
    this.video.autoplay = true;
    this.video.playsInline = true;
    const caption = document.createElement("figcaption");
    caption.textContent = name || "";
    this.element.append(this.video, caption);
  }

  show(stream) {
    if (this.video.srcObject !== stream) {
      this.video.srcObject = stream;
    }
    this.video.play().catch(() => {
      // Autoplay with sound needs a gesture; the person has touched the screen many times by
      // now, but should it be refused, play muted rather than not at all.
      this.video.muted = true;
      this.video.play().catch(() => {});
    });
  }

  state(state) {
    this.element.dataset.state = state;
  }

  frames(count) {
    this.element.dataset.framesDecoded = String(count);
  }

  remove() {
    this.video.srcObject = null;
    this.element.remove();
  }
}
