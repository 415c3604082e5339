/*
 * The consult recording API for the call page (docs/consults.md, "Recording with consent").
 * Not a component: the call page imports these functions.
 *
 *   await consent(consultId, { patientConsent: true });  // the GP, with the patient's consent
 *   await consent(consultId);                            // the specialist
 *   await consent(consultId, { consent: false });        // withdraw (stops a recording)
 *   const now = await state(consultId);                  // now.recording, now.gp_consent, …
 *
 * Both resolve with the recording state and reject with an ApiError (409, 422 with the
 * API's message). Everybody in the call sees that it is being recorded from `peers`: a peer
 * with the role "recorder" (isRecorder).
 */
import { fetchJson } from "../core/fetch.mjs";

function base(consultId) {
  return `/api/v1/consults/${encodeURIComponent(String(consultId))}/recording`;
}

/** Give (or withdraw) my consent; the GP's carries the patient's (patientConsent, default true). */
export function consent(consultId, { consent: given = true, patientConsent = undefined } = {}) {
  const body = { consent: given };
  if (patientConsent !== undefined) {
    body.patient_consent = patientConsent;
  }
  return fetchJson(base(consultId), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** Where the consult's recording stands: who consented, recording or not, the file's figures. */
export function state(consultId) {
  return fetchJson(`${base(consultId)}/state`);
}

/** The URL of the recorded file (video/webm), given once the consult has ended. */
export function fileUrl(consultId) {
  return base(consultId);
}

/** True for the server's recorder in a `peers` list entry. */
export function isRecorder(peer) {
  return Boolean(peer) && peer.role === "recorder";
}
