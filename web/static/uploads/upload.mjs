/* The upload page: DICOM files to STOW-RS, zips, photos and aECG to /upload/*, with per-file progress. */
import { fetchJson } from "../core/fetch.mjs";
import { droppedFiles, isWanted, kindOf, pathOf } from "./files.mjs";
import { MismatchPanel } from "./mismatch.mjs";
import { explain, plainReason, plainStatus } from "./reasons.mjs";
import { errorMessage, send, stowBody } from "./send.mjs";

const PARALLEL = 3;
const OK = new Set(["stored", "duplicate", "replaced"]);
const SHOWN = new Set(["stored", "duplicate", "replaced", "partly stored", "uploading", "waiting"]);
const NOT_LINKED = "The studies were stored but could not be linked to the patient.";

function label(outcome) {
  return SHOWN.has(outcome) ? outcome : "rejected";
}

function firstValue(item, tag) {
  const attribute = item && item[tag];
  return attribute && attribute.Value ? attribute.Value[0] : null;
}

function studyOf(url) {
  const found = /\/studies\/([0-9.]+)/.exec(url || "");
  return found ? found[1] : null;
}

/**
 * <section data-module="upload" data-max-photo-mb="25">: files, folders and zips, chosen or
 * dropped, uploaded PARALLEL at a time; each file's outcome and the batch's, then the STOW-RS
 * studies are linked to the chosen patient.
 */
export default class Upload {
  static moduleName = "upload";

  #maxPhotoMb;
  #patient = document.getElementById("upload-patient");
  #description = document.getElementById("upload-description");
  #drop = document.getElementById("upload-drop");
  #notice = document.getElementById("upload-notice");
  #panel = document.getElementById("upload-progress");
  #list = document.getElementById("upload-list");
  #overall = document.getElementById("upload-overall");
  #overallText = document.getElementById("upload-overall-text");
  #summary = document.getElementById("upload-summary");
  #done = document.getElementById("upload-done");
  #template = document.getElementById("upload-item");
  #items = [];
  #queue = [];
  #running = 0;
  #seenInstances = new Set();
  #linkStudies = new Set();
  #mismatches = new MismatchPanel();

  constructor(root) {
    this.#maxPhotoMb = parseInt(root.getAttribute("data-max-photo-mb") || "0", 10);
    const drop = this.#drop;
    for (const name of ["dragenter", "dragover"]) {
      drop.addEventListener(name, (event) => {
        event.preventDefault();
        drop.classList.add("dropzone-active");
      });
    }
    drop.addEventListener("dragleave", (event) => {
      if (!drop.contains(event.relatedTarget)) {
        drop.classList.remove("dropzone-active");
      }
    });
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("dropzone-active");
      droppedFiles(event.dataTransfer).then((files) => this.add(files));
    });
    for (const id of ["upload-files", "upload-folder"]) {
      const input = document.getElementById(id);
      input.addEventListener("change", () => {
        this.add(Array.from(input.files || []));
        input.value = "";
      });
    }
  }

  /** Queue files for upload (hidden files, DICOMDIR and Thumbs.db are left out). */
  add(files) {
    const accepted = files.filter(isWanted);
    if (!accepted.length) {
      this.#showNotice("There were no files to upload.");
      return;
    }
    this.#showNotice("");
    this.#panel.hidden = false;
    for (const file of accepted) {
      const element = this.#template.content.firstElementChild.cloneNode(true);
      const item = {
        file,
        kind: kindOf(file),
        element,
        bar: element.querySelector("progress"),
        badge: element.querySelector(".upload-outcome"),
        message: element.querySelector(".upload-message"),
        loaded: 0,
        finished: false,
        outcome: "waiting",
      };
      element.querySelector(".upload-name").textContent = pathOf(file);
      item.bar.setAttribute("aria-label", "Upload of " + file.name);
      this.#list.append(element);
      this.#items.push(item);
      this.#queue.push(item);
    }
    this.#refresh();
    this.#next();
  }

  #chosenPatient() {
    return this.#patient.value;
  }

  #next() {
    while (this.#running < PARALLEL && this.#queue.length) {
      const item = this.#queue.shift();
      this.#running += 1;
      this.#upload(item).then(() => {
        item.finished = true;
        item.bar.value = 100;
        this.#running -= 1;
        this.#refresh();
        if (!this.#running && !this.#queue.length) {
          this.#linkToPatient();
        }
        this.#next();
      });
    }
  }

  #upload(item) {
    const file = item.file;
    const progress = (fraction) => {
      item.loaded = fraction * file.size;
      item.bar.value = Math.round(fraction * 100);
      this.#refresh();
    };
    this.#setOutcome(item, "uploading", "");
    const patient = this.#chosenPatient();
    if (item.kind === "zip") {
      const query = patient ? "?patient=" + encodeURIComponent(patient) : "";
      return send("/upload/zip" + query, file, "application/zip", "application/json", progress).then(
        (response) => {
          if (response.status === 200 && response.json && response.json.results) {
            this.#showMembers(item, response.json.results);
            this.#mismatches.show(response.json.mismatches);
          } else {
            this.#setOutcome(item, "rejected", errorMessage(response));
          }
        },
      );
    }
    if (item.kind === "aecg") {
      const query = new URLSearchParams({ name: file.name });
      if (patient) {
        query.set("patient", patient);
      }
      return send("/upload/aecg?" + query, file, "application/xml", "application/json", progress).then(
        (response) => {
          const result = response.status === 200 && response.json && response.json.results[0];
          if (result) {
            this.#setOutcome(item, result.outcome, result.message);
            this.#mismatches.show(response.json.mismatches);
          } else {
            this.#setOutcome(item, "rejected", errorMessage(response));
          }
        },
      );
    }
    if (item.kind === "photo") {
      if (!patient) {
        this.#setOutcome(item, "rejected", "Choose the patient before uploading a photo.");
        return Promise.resolve();
      }
      if (this.#maxPhotoMb && file.size > this.#maxPhotoMb * 1024 * 1024) {
        this.#setOutcome(item, "rejected", "The photo is larger than " + this.#maxPhotoMb + " MB.");
        return Promise.resolve();
      }
      const form = new FormData();
      form.append("patient", patient);
      form.append("description", this.#description.value);
      form.append("image", file, file.name);
      return send("/upload/photo", form, null, "application/json", progress).then((response) => {
        const result = response.status === 200 && response.json && response.json.results[0];
        if (result) {
          if (OK.has(result.outcome)) {
            this.#setOutcome(item, result.outcome, "Stored as a DICOM image.");
          } else {
            const technical = result.reason ? result.reason + ": " + result.message : result.message;
            this.#setOutcome(item, result.outcome, plainReason(result.reason, result.message), technical);
          }
        } else {
          this.#setOutcome(item, "rejected", errorMessage(response));
        }
      });
    }
    const { body, type } = stowBody(file);
    return send("/dicom-web/studies", body, type, "application/dicom+json", progress).then((response) => {
      const result = this.#stowResult(response);
      if (result.study && this.#chosenPatient()) {
        this.#linkStudies.add(result.study);
      }
      this.#setOutcome(item, result.outcome, result.message, result.technical);
      if (result.study) {
        this.#offerReading(item, result.study);
      }
    });
  }

  /** A link from a stored file to its study, where the GP asks a specialist to read it. */
  #offerReading(item, studyUid) {
    if (item.element.querySelector(".upload-ask-reading")) {
      return;
    }
    const link = document.createElement("a");
    link.className = "upload-ask-reading";
    link.href = "/studies/" + encodeURIComponent(studyUid) + "#ask-title";
    link.textContent = "Open the study to ask for a reading";
    item.element.append(" ", link);
  }

  /** One file's result from a STOW-RS response (ReferencedSOPSequence / FailedSOPSequence). */
  #stowResult(response) {
    const body = response.json || {};
    const stored = (body["00081199"] || {}).Value || [];
    const failed = (body["00081198"] || {}).Value || [];
    if (stored.length) {
      const uid = firstValue(stored[0], "00081155");
      const duplicate = Boolean(uid && this.#seenInstances.has(uid));
      this.#seenInstances.add(uid);
      return {
        outcome: duplicate ? "duplicate" : "stored",
        message: duplicate ? "The same instance was already uploaded on this page." : "",
        study: studyOf(firstValue(stored[0], "00081190")),
      };
    }
    if (failed.length) {
      const reason = firstValue(failed[0], "00081197");
      const comment = firstValue(failed[0], "00000902") || "";
      const code = typeof reason === "number" ? "Failure reason " + reason.toString(16).toUpperCase() + "H" : "";
      return {
        outcome: "rejected",
        message: plainStatus(reason, comment),
        technical: [comment, code].filter(Boolean).join(" · "),
      };
    }
    return { outcome: "rejected", message: errorMessage(response) };
  }

  #setOutcome(item, outcome, message, technical = "") {
    item.outcome = outcome;
    item.badge.textContent = label(outcome);
    item.badge.className = "badge upload-outcome outcome-" + label(outcome).replace(" ", "-");
    explain(item.message, message, technical);
    item.element.classList.toggle("upload-item-failed", label(outcome) === "rejected");
  }

  /** Per-member results of a zip, listed under it. */
  #showMembers(item, results) {
    const counts = new Map();
    const members = document.createElement("ul");
    members.className = "upload-members";
    for (const result of results) {
      const outcome = label(result.outcome);
      counts.set(outcome, (counts.get(outcome) || 0) + 1);
      const line = document.createElement("li");
      const badge = document.createElement("span");
      badge.className = "badge upload-outcome outcome-" + outcome;
      badge.textContent = outcome;
      const name = document.createElement("span");
      name.className = "upload-name";
      name.textContent = result.name;
      line.append(badge, " ", name);
      if (result.message) {
        const why = document.createElement("span");
        why.className = "muted";
        const technical = result.reason ? result.reason + ": " + result.message : result.message;
        explain(why, plainReason(result.reason, result.message), technical);
        line.append(" — ", why);
      }
      members.append(line);
    }
    item.element.append(members);
    const ok = (counts.get("stored") || 0) + (counts.get("duplicate") || 0) + (counts.get("replaced") || 0);
    const text = Array.from(counts, ([key, count]) => count + " " + key).join(", ");
    this.#setOutcome(item, ok === results.length ? "stored" : ok ? "partly stored" : "rejected", text);
  }

  #refresh() {
    let total = 0;
    let loaded = 0;
    let finished = 0;
    for (const item of this.#items) {
      total += item.file.size || 1;
      loaded += item.finished ? item.file.size || 1 : Math.min(item.loaded, item.file.size);
      finished += item.finished ? 1 : 0;
    }
    const percent = total ? Math.floor((loaded / total) * 100) : 0;
    this.#overall.value = percent;
    this.#overallText.textContent = percent + "% · " + finished + " of " + this.#items.length + " files";
    if (finished === this.#items.length && this.#items.length) {
      const ok = this.#items.filter((item) => OK.has(item.outcome)).length;
      this.#summary.textContent = ok + " of " + this.#items.length + " files stored";
      this.#done.hidden = ok === 0;
    } else {
      this.#summary.textContent = "Uploading…";
      this.#done.hidden = true;
    }
  }

  /** Tell the server which patient the STOW-RS studies of this batch belong to. */
  #linkToPatient() {
    const studies = [...this.#linkStudies];
    if (!studies.length || !this.#chosenPatient()) {
      return;
    }
    this.#linkStudies = new Set();
    fetchJson("/upload/link", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ patient: parseInt(this.#chosenPatient(), 10), studies }),
    })
      .then((answer) => this.#mismatches.show(answer.mismatches))
      .catch(() => this.#showNotice(NOT_LINKED));
  }

  #showNotice(text) {
    this.#notice.textContent = text;
    this.#notice.hidden = !text;
  }
}
