/* Files that name someone other than the chosen patient: shown, and linked only when confirmed. */
import { fetchJson } from "../core/fetch.mjs";

const ATTRIBUTES = {
  PatientName: "Name",
  PatientID: "Patient ID",
  PatientBirthDate: "Date of birth",
};

/** A DICOM PN or DA as people read it: "DOE, Jane", "14 Mar 1956". */
function readable(attribute, value) {
  if (attribute === "PatientName") {
    const [family, given = ""] = value.split("=")[0].split("^");
    return given ? `${family.toUpperCase()}, ${given}` : family.toUpperCase();
  }
  if (attribute === "PatientBirthDate" && /^\d{8}$/.test(value)) {
    const date = new Date(Date.UTC(+value.slice(0, 4), +value.slice(4, 6) - 1, +value.slice(6)));
    return date.toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  }
  return value;
}

/**
 * The "check the patient" panel of the upload page (#upload-mismatch): lists the studies the
 * server left unlinked because their files name another person, and links them to the chosen
 * patient only when the person confirms; or leaves them unlinked.
 */
export class MismatchPanel {
  #panel = document.getElementById("upload-mismatch");
  #list = document.getElementById("upload-mismatch-list");
  #patientName = document.getElementById("upload-mismatch-patient");
  #confirm = document.getElementById("upload-mismatch-confirm");
  #dismiss = document.getElementById("upload-mismatch-dismiss");
  #status = document.getElementById("upload-mismatch-status");
  #patient = document.getElementById("upload-patient");
  #pending = new Map(); // study UID -> mismatch, for the patient they were compared with
  #comparedWith = "";

  constructor() {
    this.#confirm.addEventListener("click", () => this.#link());
    this.#dismiss.addEventListener("click", () => this.#close("The studies were stored and left unlinked."));
  }

  /** Add the mismatches of one answer (from /upload/link or /upload/zip). */
  show(mismatches) {
    if (!mismatches || !mismatches.length) {
      return;
    }
    this.#comparedWith = String(mismatches[0].patient);
    for (const mismatch of mismatches) {
      this.#pending.set(mismatch.study_uid, mismatch);
    }
    this.#render();
    this.#panel.hidden = false;
    this.#panel.focus();
  }

  #render() {
    const option = this.#patient.selectedOptions[0];
    this.#patientName.textContent = option ? option.textContent.split(" · ")[0] : "the chosen patient";
    this.#list.replaceChildren();
    for (const mismatch of this.#pending.values()) {
      const item = document.createElement("li");
      const table = document.createElement("table");
      table.className = "table mismatch-table";
      const caption = document.createElement("caption");
      caption.textContent = "Study " + mismatch.study_uid;
      const head = document.createElement("tr");
      for (const text of ["", "In the files", "Registered"]) {
        const cell = document.createElement("th");
        cell.scope = "col";
        cell.textContent = text;
        head.append(cell);
      }
      table.append(caption, head);
      for (const difference of mismatch.differences) {
        const row = document.createElement("tr");
        const name = document.createElement("th");
        name.scope = "row";
        name.textContent = ATTRIBUTES[difference.attribute] || difference.attribute;
        const files = document.createElement("td");
        files.textContent = readable(difference.attribute, difference.in_files);
        const registered = document.createElement("td");
        registered.textContent = readable(difference.attribute, difference.registered);
        row.append(name, files, registered);
        table.append(row);
      }
      item.append(table);
      this.#list.append(item);
    }
  }

  /** Link to the patient chosen now: confirmed if it is the one compared, else checked again. */
  async #link() {
    const patient = this.#patient.value;
    if (!patient) {
      this.#status.textContent = "Choose the patient these files belong to.";
      return;
    }
    const studies = [...this.#pending.keys()];
    const confirm = patient === this.#comparedWith;
    this.#confirm.disabled = true;
    try {
      const answer = await fetchJson("/upload/link", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ patient: parseInt(patient, 10), studies, confirm }),
      });
      this.#pending.clear();
      if (answer.mismatches && answer.mismatches.length) {
        this.show(answer.mismatches); // another patient chosen: its differences, to confirm
        this.#status.textContent = "These files differ from this patient too; check again.";
      } else {
        this.#close(`Linked ${answer.linked.length} ${answer.linked.length === 1 ? "study" : "studies"} to the patient.`);
      }
    } catch (error) {
      this.#status.textContent = error.message;
    } finally {
      this.#confirm.disabled = false;
    }
  }

  #close(message) {
    this.#pending.clear();
    this.#list.replaceChildren();
    this.#panel.hidden = true;
    const notice = document.getElementById("upload-notice");
    notice.textContent = message;
    notice.hidden = false;
  }
}
