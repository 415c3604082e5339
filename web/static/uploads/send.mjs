/* Uploads with progress: XMLHttpRequest, since fetch() reports no upload progress. */
import { csrfToken } from "../core/csrf.mjs";

/** POST with upload progress; resolves (never rejects) with the status and the JSON body or null. */
export function send(url, body, contentType, accept, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    if (contentType) {
      xhr.setRequestHeader("Content-Type", contentType);
    }
    xhr.setRequestHeader("Accept", accept);
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && event.total > 0) {
        onProgress(event.loaded / event.total);
      }
    });
    xhr.addEventListener("load", () => {
      resolve({ status: xhr.status, json: parseJson(xhr.responseText) });
    });
    xhr.addEventListener("error", () => {
      resolve({ status: 0, json: null });
    });
    xhr.send(body);
  });
}

/** One DICOM file as a STOW-RS request body: multipart/related with one application/dicom part. */
export function stowBody(file) {
  const boundary = "doorstep-" + Date.now().toString(16) + Math.random().toString(16).slice(2);
  const body = new Blob([
    "--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\n",
    file,
    "\r\n--" + boundary + "--\r\n",
  ]);
  return { body, type: 'multipart/related; type="application/dicom"; boundary=' + boundary };
}

/** What to tell the person about a failed upload. */
export function errorMessage(response) {
  if (response.status === 0) {
    return "The connection to the server failed; try again.";
  }
  const error = response.json && response.json.error;
  if (error && error.message) {
    return error.message;
  }
  if (response.status === 403) {
    return "Not allowed; reload the page and sign in again.";
  }
  return "The server answered " + response.status + ".";
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
