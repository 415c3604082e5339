/*
 * One RTCPeerConnection with one remote peer of the call: perfect negotiation (the polite peer
 * rolls back on a collision; the host is impolite), trickle ICE both ways ("candidate": null
 * ends them), and ICE restart when the connection fails, stays disconnected, or the network
 * changed. Messages of a link are handled one after the other, so a candidate never overtakes
 * the description it belongs to.
 */
const DISCONNECTED_GRACE_MS = 3000;

export class PeerLink {
  #send;
  #onTrack;
  #onState;
  #makingOffer = false;
  #ignoreOffer = false;
  #chain = Promise.resolve();
  #restartTimer = 0;

  /**
   * peer: the remote peer id; polite: whether I yield on a collision; initiator: whether I
   * offer first (I entered a room where they were); tracks: my local tracks;
   * send(message) to the signaling socket; onTrack(stream); onState(connectionState).
   */
  constructor({ peer, name, role, polite, initiator, config, tracks, stream, send, onTrack, onState }) {
    this.peer = peer;
    this.name = name;
    this.role = role;
    this.polite = polite;
    this.#send = send;
    this.#onTrack = onTrack;
    this.#onState = onState;
    this.pc = new RTCPeerConnection(config);
    this.stream = new MediaStream();
    this.pc.addEventListener("track", (event) => {
      this.stream.addTrack(event.track);
      event.track.addEventListener("unmute", () => this.#onTrack(this.stream));
      this.#onTrack(this.stream);
    });
    this.pc.addEventListener("negotiationneeded", () => this.#offer());
    this.pc.addEventListener("icecandidate", ({ candidate }) => {
      this.#send({
        type: "candidate",
        to: this.peer,
        candidate: candidate
          ? {
              candidate: candidate.candidate,
              sdpMid: candidate.sdpMid,
              sdpMLineIndex: candidate.sdpMLineIndex,
            }
          : null,
      });
    });
    this.pc.addEventListener("connectionstatechange", () => this.#connectionChanged());
    if (initiator) {
      for (const track of tracks) {
        this.pc.addTransceiver(track, { direction: "sendrecv", streams: [stream] });
      }
    }
    this.tracks = tracks;
    this.localStream = stream;
  }

  get state() {
    return this.pc.connectionState;
  }

  /** An offer, answer or candidate from this peer (in the order they came). */
  receive(message) {
    this.#chain = this.#chain.then(() => this.#handle(message)).catch((error) => {
      console.warn(`call: a ${message.type} from ${this.peer} could not be used`, error);
    });
    return this.#chain;
  }

  /** The remote peer came back under a new peer id (its socket reconnected). */
  rename(peer) {
    this.peer = peer;
  }

  /** Ask for new ICE candidates on both sides (through a renegotiation). */
  restartIce() {
    if (this.pc.signalingState !== "closed") {
      this.pc.restartIce();
    }
  }

  /**
   * After the signaling socket came back: an offer made while it was down was lost, so roll
   * it back, and restart ICE (the network may have changed) with a new offer.
   */
  async renegotiate() {
    this.#chain = this.#chain.then(async () => {
      if (this.pc.signalingState === "have-local-offer") {
        await this.pc.setLocalDescription({ type: "rollback" });
      }
      this.restartIce();
    }).catch((error) => console.warn("call: could not renegotiate", error));
    return this.#chain;
  }

  /** Send this track instead of the current one of its kind (null: send nothing). */
  async replaceTrack(kind, track) {
    for (const transceiver of this.pc.getTransceivers()) {
      if (transceiver.receiver.track && transceiver.receiver.track.kind === kind && transceiver.sender) {
        await transceiver.sender.replaceTrack(track);
      }
    }
  }

  /** The senders of one kind (for low-bandwidth encodings). */
  senders(kind) {
    return this.pc
      .getTransceivers()
      .filter((t) => t.receiver.track && t.receiver.track.kind === kind)
      .map((t) => t.sender);
  }

  close() {
    window.clearTimeout(this.#restartTimer);
    this.pc.close();
  }

  async #offer() {
    try {
      this.#makingOffer = true;
      await this.pc.setLocalDescription();
      this.#send({ type: "offer", to: this.peer, sdp: this.pc.localDescription.sdp });
    } catch (error) {
      console.warn("call: could not make an offer", error);
    } finally {
      this.#makingOffer = false;
    }
  }

  async #handle(message) {
    const pc = this.pc;
    if (pc.signalingState === "closed") {
      return;
    }
    if (message.type === "candidate") {
      try {
        if (message.candidate) {
          await pc.addIceCandidate(message.candidate);
        } else {
          await pc.addIceCandidate();
        }
      } catch (error) {
        if (!this.#ignoreOffer) {
          throw error;
        }
      }
      return;
    }
    const description = { type: message.type, sdp: message.sdp };
    const collision =
      description.type === "offer" && (this.#makingOffer || pc.signalingState !== "stable");
    this.#ignoreOffer = !this.polite && collision;
    if (this.#ignoreOffer) {
      return;
    }
    await pc.setRemoteDescription(description);
    if (description.type === "offer") {
      this.#attachTracks();
      await pc.setLocalDescription();
      this.#send({ type: "answer", to: this.peer, sdp: pc.localDescription.sdp });
    }
  }

  /** Answering a first offer: send my tracks on the transceivers the offer created. */
  #attachTracks() {
    for (const track of this.tracks) {
      const sending = this.pc.getSenders().some((s) => s.track && s.track.kind === track.kind);
      if (sending) {
        continue;
      }
      const free = this.pc
        .getTransceivers()
        .find(
          (t) =>
            !t.stopped &&
            t.receiver.track &&
            t.receiver.track.kind === track.kind &&
            !t.sender.track &&
            !t.currentDirection,
        );
      if (free) {
        free.direction = "sendrecv";
        free.sender.replaceTrack(track);
        free.sender.setStreams?.(this.localStream);
      }
    }
  }

  #connectionChanged() {
    const state = this.pc.connectionState;
    window.clearTimeout(this.#restartTimer);
    if (state === "failed") {
      this.restartIce();
    } else if (state === "disconnected") {
      this.#restartTimer = window.setTimeout(() => {
        if (this.pc.connectionState === "disconnected") {
          this.restartIce();
        }
      }, DISCONNECTED_GRACE_MS);
    }
    this.#onState(state);
  }
}
