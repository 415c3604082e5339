/*
 * multipart/related bodies (RFC 2387) as WADO-RS sends frames and bulk data: the parts' headers
 * and bodies, the bodies as views on the response bytes (no copy).
 */

const CRLF = [13, 10];

/** The boundary parameter of a Content-Type header, or throw. */
export function boundaryOf(contentType) {
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!match) {
    throw new Error(`not a multipart Content-Type: ${contentType}`);
  }
  return match[1] ?? match[2];
}

/** [{headers: Map (lower-case names), body: Uint8Array}] of a multipart body. */
export function parseMultipart(bytes, contentType) {
  const delimiter = ascii(`--${boundaryOf(contentType)}`);
  const parts = [];
  let at = indexOf(bytes, delimiter, 0);
  if (at < 0) {
    throw new Error("multipart body without its boundary");
  }
  for (;;) {
    at += delimiter.length;
    if (bytes[at] === 45 && bytes[at + 1] === 45) {
      return parts; // "--": the closing delimiter
    }
    const lineEnd = indexOf(bytes, CRLF, at);
    if (lineEnd < 0) {
      throw new Error("truncated multipart body");
    }
    const headerEnd = indexOf(bytes, [13, 10, 13, 10], lineEnd);
    const headerText = headerEnd < 0 ? "" : latin1(bytes.subarray(lineEnd + 2, headerEnd));
    const bodyStart = headerEnd < 0 ? lineEnd + 2 : headerEnd + 4;
    // Headers may be empty: then the blank line follows the delimiter line at once.
    const start = headerText === "" && bytes[lineEnd + 2] === 13 ? lineEnd + 4 : bodyStart;
    const next = indexOf(bytes, [...CRLF, ...delimiter], start);
    if (next < 0) {
      throw new Error("truncated multipart body");
    }
    parts.push({ headers: parseHeaders(headerText), body: bytes.subarray(start, next) });
    at = next + 2;
  }
}

function parseHeaders(text) {
  const headers = new Map();
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
  }
  return headers;
}

function indexOf(bytes, pattern, from) {
  const head = pattern[0];
  const last = bytes.length - pattern.length;
  for (let i = bytes.indexOf(head, from); i >= 0 && i <= last; i = bytes.indexOf(head, i + 1)) {
    let j = 1;
    while (j < pattern.length && bytes[i + j] === pattern[j]) {
      j += 1;
    }
    if (j === pattern.length) {
      return i;
    }
  }
  return -1;
}

function ascii(text) {
  return Array.from(text, (c) => c.charCodeAt(0));
}

function latin1(bytes) {
  let out = "";
  for (const byte of bytes) {
    out += String.fromCharCode(byte);
  }
  return out;
}
