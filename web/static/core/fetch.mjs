/* fetch() for Doorstep's own API: session cookie, CSRF token, JSON and the documented errors. */
import { csrfToken } from "./csrf.mjs";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** fetch() with same-origin credentials, X-CSRF-Token on unsafe methods, JSON unless told. */
export function apiFetch(url, options = {}) {
  const init = { credentials: "same-origin", ...options };
  const method = (init.method || "GET").toUpperCase();
  const headers = new Headers(init.headers || {});
  if (!SAFE_METHODS.has(method)) {
    headers.set("X-CSRF-Token", csrfToken());
  }
  if (!headers.has("Accept")) {
    headers.set("Accept", "application/json");
  }
  init.headers = headers;
  return window.fetch(url, init);
}

/** An answer other than 2xx: its status (0 when offline) and the API's error code and details. */
export class ApiError extends Error {
  constructor(status, error, options = undefined) {
    const fallback = status
      ? `The server answered ${status}.`
      : "The connection to the server failed; try again.";
    super((error && error.message) || fallback, options);
    this.name = "ApiError";
    this.status = status;
    this.code = (error && error.code) || "";
    this.details = error ? error.details : null;
  }
}

/** The parsed JSON body of a response, or null when it is empty or not JSON. */
export async function readJson(response) {
  try {
    return JSON.parse(await response.text());
  } catch {
    return null;
  }
}

/** apiFetch() resolving with the JSON body of a 2xx answer; rejects with an ApiError otherwise. */
export async function fetchJson(url, options = {}) {
  let response;
  try {
    response = await apiFetch(url, options);
  } catch (error) {
    throw new ApiError(0, null, { cause: error });
  }
  const body = await readJson(response);
  if (!response.ok) {
    throw new ApiError(response.status, body && body.error);
  }
  return body;
}
