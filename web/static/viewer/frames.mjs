/*
 * Frames from WADO-RS, decoded to samples, with a bounded cache and a bounded number of
 * requests in flight. The frame on screen is asked for first; prefetch() fills the cache with
 * the frames nearest the current one (all of a small series, a window around the current
 * frame of a huge multi-frame), and a new current frame reorders what is still waiting.
 */
import { parseMultipart } from "./multipart.mjs";
import { frameSamples } from "./pixels.mjs";

/**
 * Native little endian frames: compressed frames are decoded by the server (media.py offers
 * decoding only for this syntax or none; transfer-syntax=* would send them as stored).
 */
export const FRAME_ACCEPT =
  'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1';

export class FrameStore {
  constructor({ concurrency = 4, maxBytes = 384 * 2 ** 20, onLoaded = () => {} } = {}) {
    this.concurrency = concurrency;
    this.maxBytes = maxBytes;
    this.onLoaded = onLoaded;
    this.cache = new Map(); // key -> samples (Map order is least recently used first)
    this.bytes = 0;
    this.pending = new Map(); // key -> promise
    this.queue = []; // entries waiting for a request slot
    this.active = 0;
    this.closed = false;
  }

  static key(entry) {
    return `${entry.instance.sop}/${entry.frame}`;
  }

  /** Cached samples of an entry, or undefined (marks it recently used). */
  peek(entry) {
    const key = FrameStore.key(entry);
    const found = this.cache.get(key);
    if (found) {
      this.cache.delete(key);
      this.cache.set(key, found);
    }
    return found;
  }

  has(entry) {
    return this.cache.has(FrameStore.key(entry));
  }

  /** The samples of an entry: from the cache, or fetched before anything queued. */
  get(entry) {
    const found = this.peek(entry);
    if (found) {
      return Promise.resolve(found);
    }
    return this.request(entry, true);
  }

  /** Queue the entries (nearest first) that are not cached, in place of what was queued. */
  prefetch(entries) {
    const kept = [];
    for (const waiting of this.queue) {
      if (waiting.urgent) {
        kept.push(waiting);
      } else {
        waiting.reject(new DOMException("no longer wanted", "AbortError"));
        this.pending.delete(waiting.key);
      }
    }
    this.queue = kept;
    let budget = this.maxBytes * 0.8 - this.bytes;
    for (const entry of entries) {
      const key = FrameStore.key(entry);
      if (this.cache.has(key) || this.pending.has(key)) {
        continue;
      }
      budget -= frameBytes(entry.instance);
      if (budget < 0) {
        break;
      }
      this.request(entry, false).catch(() => {});
    }
  }

  request(entry, urgent) {
    const key = FrameStore.key(entry);
    const existing = this.pending.get(key);
    if (existing && !urgent) {
      return existing;
    }
    if (existing) {
      const index = this.queue.findIndex((w) => w.key === key);
      if (index >= 0) {
        const [waiting] = this.queue.splice(index, 1);
        waiting.urgent = true;
        this.queue.unshift(waiting);
        this.pump();
      }
      return existing;
    }
    let waiting;
    const promise = new Promise((resolve, reject) => {
      waiting = { key, entry, resolve, reject, urgent };
    });
    this.pending.set(key, promise);
    if (urgent) {
      this.queue.unshift(waiting);
    } else {
      this.queue.push(waiting);
    }
    this.pump();
    return promise;
  }

  pump() {
    while (!this.closed && this.active < this.concurrency && this.queue.length) {
      const waiting = this.queue.shift();
      this.active += 1;
      this.fetchFrame(waiting.entry)
        .then((samples) => {
          this.store(waiting.key, samples);
          waiting.resolve(samples);
          this.onLoaded(waiting.entry);
        }, waiting.reject)
        .finally(() => {
          this.pending.delete(waiting.key);
          this.active -= 1;
          this.pump();
        });
    }
  }

  async fetchFrame(entry) {
    const response = await fetch(`${entry.instance.url}/frames/${entry.frame}`, {
      credentials: "same-origin",
      headers: { Accept: FRAME_ACCEPT },
    });
    if (!response.ok) {
      throw new Error(`frame ${entry.frame}: HTTP ${response.status}`);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    const [part] = parseMultipart(bytes, response.headers.get("Content-Type") ?? "");
    if (!part) {
      throw new Error(`frame ${entry.frame}: empty response`);
    }
    return frameSamples(part.body, entry.instance);
  }

  store(key, samples) {
    this.cache.set(key, samples);
    this.bytes += samples.byteLength;
    for (const [oldest, value] of this.cache) {
      if (this.bytes <= this.maxBytes || oldest === key) {
        break;
      }
      this.cache.delete(oldest);
      this.bytes -= value.byteLength;
    }
  }

  close() {
    this.closed = true;
    this.prefetch([]);
  }
}

/** Decoded size of one frame of an instance, in bytes. */
export function frameBytes(instance) {
  const size = instance.bitsAllocated <= 8 ? 1 : instance.bitsAllocated <= 16 ? 2 : 4;
  return instance.rows * instance.columns * instance.samplesPerPixel * size;
}

/** Entries of a stack ordered by distance from `index` (after first), at most `limit`. */
export function nearest(stack, index, limit) {
  const out = [];
  for (let d = 1; out.length < limit && (index - d >= 0 || index + d < stack.length); d += 1) {
    if (index + d < stack.length) out.push(stack[index + d]);
    if (index - d >= 0 && out.length < limit) out.push(stack[index - d]);
  }
  return out;
}
