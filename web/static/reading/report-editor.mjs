/*
 * <aside data-module="report-editor" data-request-id data-kind>: the report beside the viewer,
 * for the reader holding the claim. Autosaves the draft (PUT …/report, 1.5 s after the last
 * change and on leaving a field), renews the lease every minute while the page is visible and
 * the reader active, fills an ECG report from the measurements confirmed beside the ECG, and
 * signs with the password typed again (POST …/report/sign).
 */
import { ApiError, fetchJson } from "../core/fetch.mjs";
import { clock } from "./words.mjs";

const SAVE_DELAY_MS = 1500;
const RENEW_EVERY_MS = 60_000;
/** ECG viewer panel key -> draft measurement key. */
const FROM_ECG_PANEL = {
  heart_rate_bpm: "heart_rate_bpm",
  rr_ms: "rr_ms",
  pr_ms: "pr_ms",
  qrs_ms: "qrs_ms",
  qt_ms: "qt_ms",
  qtc_bazett_ms: "qtc_ms",
  qrs_axis_deg: "axis_deg",
  rhythm: "rhythm",
};
const TEXT_KEYS = new Set(["rhythm", "technique", "comparison"]);

/** A typed value as the draft stores it: a number where it is one, else the text, null if empty. */
export function measurementValue(key, text) {
  const trimmed = String(text ?? "").trim();
  if (trimmed === "") {
    return null;
  }
  if (TEXT_KEYS.has(key)) {
    return trimmed;
  }
  const number = Number(trimmed.replace(",", "."));
  return Number.isFinite(number) ? number : trimmed;
}

export default class ReportEditor {
  static moduleName = "report-editor";

  #root;
  #id;
  #base;
  #form;
  #status;
  #lapsed;
  #dialog;
  #signError;
  #extra = {};
  #timer = 0;
  #dirty = false;
  #saving = null;
  #again = false;
  #signed = false;
  #lastActivity = Date.now();

  constructor(root) {
    this.#root = root;
    this.#id = root.dataset.requestId;
    this.#base = `/api/v1/reading-requests/${encodeURIComponent(this.#id)}`;
    this.#form = root.querySelector("[data-editor-form]");
    this.#status = root.querySelector("[data-editor-save]");
    this.#lapsed = root.querySelector("[data-editor-lapsed]");
    this.#dialog = root.querySelector("[data-editor-dialog]");
    this.#signError = root.querySelector("[data-editor-sign-error]");
    for (const field of this.#measurementFields()) {
      field.dataset.follow = field.value.trim() === "" ? "yes" : "no";
    }
    this.#form.addEventListener("submit", (event) => event.preventDefault());
    this.#form.addEventListener("input", (event) => {
      if (event.target.dataset.measurement) {
        event.target.dataset.follow = "no";
      }
      this.#changed();
    });
    this.#form.addEventListener("focusout", () => {
      if (this.#dirty) {
        this.#saveSoon(0);
      }
    });
    root.querySelector("[data-editor-reclaim]").addEventListener("click", () => this.#reclaim());
    root.querySelector("[data-editor-sign]").addEventListener("click", () => this.#openSign());
    root.querySelector("[data-editor-sign-cancel]").addEventListener("click", () => this.#dialog.close());
    root.querySelector("[data-editor-sign-form]").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#sign();
    });
    root.querySelector("[data-editor-preview]").addEventListener("click", (event) => this.#preview(event));
    for (const type of ["keydown", "pointerdown", "wheel"]) {
      document.addEventListener(type, () => (this.#lastActivity = Date.now()), { passive: true, capture: true });
    }
    window.setInterval(() => this.#renew(), RENEW_EVERY_MS);
    if (root.dataset.kind === "ecg") {
      this.#followEcgPanel();
    }
    root.dataset.editorReady = "";
  }

  #measurementFields() {
    return [...this.#form.querySelectorAll("[data-measurement]")];
  }

  /** The draft as the API takes it. */
  draft() {
    const measurements = { ...this.#extra };
    for (const field of this.#measurementFields()) {
      measurements[field.dataset.measurement] = measurementValue(field.dataset.measurement, field.value);
    }
    return {
      findings: this.#form.elements.findings.value,
      impression: this.#form.elements.impression.value,
      measurements,
    };
  }

  /** Pre-fill from the ECG viewer's measurements panel, and follow its corrections. */
  #followEcgPanel() {
    const viewer = document.querySelector(".ecg-viewer");
    if (!viewer) {
      return;
    }
    const apply = () => {
      let changed = false;
      for (const [panelKey, key] of Object.entries(FROM_ECG_PANEL)) {
        const input = viewer.querySelector(`input.ecg-reader-value[name="${panelKey}"]`);
        if (!input) {
          continue;
        }
        const field = this.#form.querySelector(`[data-measurement="${key}"]`);
        if (!field) {
          const value = measurementValue(key, input.value);
          changed ||= this.#extra[key] !== value;
          this.#extra[key] = value;
        } else if (field.dataset.follow === "yes" && field.value !== input.value) {
          field.value = input.value;
          changed = true;
        }
      }
      return changed;
    };
    const started = () => {
      if (apply()) {
        this.#changed();
      }
      this.#root.dataset.editorPrefilled = "";
    };
    if (viewer.hasAttribute("data-measurements-loaded")) {
      started();
    } else {
      const observer = new MutationObserver(() => {
        if (viewer.hasAttribute("data-measurements-loaded")) {
          observer.disconnect();
          started();
        }
      });
      observer.observe(viewer, { attributes: true, attributeFilter: ["data-measurements-loaded"] });
    }
    viewer.addEventListener("input", (event) => {
      if (event.target.matches("input.ecg-reader-value") && apply()) {
        this.#changed();
      }
    });
  }

  #changed() {
    if (this.#signed) {
      return;
    }
    this.#dirty = true;
    this.#status.textContent = "Changes not saved yet…";
    this.#status.classList.remove("reading-save-error");
    this.#saveSoon(SAVE_DELAY_MS);
  }

  #saveSoon(delay) {
    window.clearTimeout(this.#timer);
    this.#timer = window.setTimeout(() => this.save(), delay);
  }

  /** Save now (one request at a time; a change during a save saves again after it). */
  async save() {
    window.clearTimeout(this.#timer);
    if (this.#saving) {
      this.#again = true;
      return this.#saving;
    }
    this.#dirty = false;
    this.#saving = this.#put().finally(() => {
      this.#saving = null;
      if (this.#again) {
        this.#again = false;
        this.save();
      }
    });
    return this.#saving;
  }

  async #put() {
    this.#status.textContent = "Saving…";
    try {
      const saved = await fetchJson(`${this.#base}/report`, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(this.draft()),
      });
      this.#status.textContent = `Saved ${clock(new Date(saved.updated_at))}`;
      this.#status.classList.remove("reading-save-error");
      this.#lapsed.hidden = true;
      return true;
    } catch (error) {
      this.#dirty = true;
      this.#failed(error);
      return false;
    }
  }

  #failed(error) {
    const reason = error instanceof ApiError ? error.message : "the connection failed";
    this.#status.textContent = `Not saved: ${reason}`;
    this.#status.classList.add("reading-save-error");
    if (error instanceof ApiError && error.status === 409) {
      this.#showLapsed(error);
    }
  }

  #showLapsed(error) {
    const details = error.details || {};
    const text = this.#lapsed.querySelector("[data-editor-lapsed-text]");
    const button = this.#lapsed.querySelector("[data-editor-reclaim]");
    if (details.reason === "not_holder" && details.claimed_by) {
      text.textContent = `${details.claimed_by} holds this request now, so your changes cannot be saved.`;
      button.hidden = true;
    } else if (details.reason === "lease_lapsed" || details.reason === "not_holder") {
      text.textContent =
        "Your claim on this request lapsed, so your changes cannot be saved. Claim it again to go on (nothing you typed is lost while this page stays open).";
      button.hidden = false;
    } else {
      text.textContent = error.message;
      button.hidden = true;
    }
    this.#lapsed.hidden = false;
  }

  async #reclaim() {
    try {
      await fetchJson(`${this.#base}/claim`, { method: "POST" });
      this.#lapsed.hidden = true;
      await this.save();
    } catch (error) {
      this.#failed(error);
    }
  }

  async #renew() {
    if (this.#signed || document.visibilityState !== "visible" || Date.now() - this.#lastActivity > RENEW_EVERY_MS) {
      return;
    }
    try {
      await fetchJson(`${this.#base}/renew`, { method: "POST" });
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        this.#showLapsed(error);
      }
    }
  }

  async #preview(event) {
    if (!this.#dirty && !this.#saving) {
      return;
    }
    event.preventDefault();
    const href = event.currentTarget.href;
    const saved = this.#dirty ? await this.save() : await this.#saving;
    if (saved !== false) {
      window.open(href, "_blank", "noopener");
    }
  }

  async #openSign() {
    if (this.#dirty || this.#saving) {
      const saved = this.#dirty ? await this.save() : await this.#saving;
      if (saved === false) {
        return;
      }
    }
    this.#signError.hidden = true;
    this.#dialog.querySelector("input[name=password]").value = "";
    this.#dialog.showModal();
    this.#dialog.querySelector("input[name=password]").focus();
  }

  async #sign() {
    const password = this.#dialog.querySelector("input[name=password]");
    const submit = this.#dialog.querySelector("[data-editor-sign-submit]");
    if (!password.value) {
      this.#signProblem("Type your password to sign.");
      return;
    }
    submit.disabled = true;
    try {
      const signed = await fetchJson(`${this.#base}/report/sign`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ password: password.value }),
      });
      password.value = "";
      this.#dialog.close();
      this.#done(signed);
    } catch (error) {
      password.value = "";
      if (error instanceof ApiError && error.status === 401) {
        this.#signProblem("That password is not right.");
      } else {
        this.#signProblem(error instanceof ApiError ? error.message : "The report could not be signed; try again.");
      }
    } finally {
      submit.disabled = false;
    }
  }

  #signProblem(text) {
    this.#signError.textContent = text;
    this.#signError.hidden = false;
    this.#dialog.querySelector("input[name=password]").setAttribute("aria-invalid", "true");
    this.#dialog.querySelector("input[name=password]").focus();
  }

  #done(signed) {
    this.#signed = true;
    window.clearTimeout(this.#timer);
    for (const field of this.#form.elements) {
      field.readOnly = true;
    }
    this.#root.querySelector("[data-editor-actions]").hidden = true;
    const signer = signed.signer && typeof signed.signer === "object" ? signed.signer.display_name : signed.signer;
    this.#status.textContent = `Signed ${clock(new Date(signed.signed_at))}${signer ? ` by ${signer}` : ""}`;
    const box = this.#root.querySelector("[data-editor-signed]");
    box.querySelector("[data-editor-report-link]").href = `/reports/${encodeURIComponent(signed.report_id)}`;
    box.querySelector("[data-editor-pdf-link]").href = `/api/v1/reports/${encodeURIComponent(signed.report_id)}.pdf`;
    box.hidden = false;
    box.querySelector("a").focus();
  }
}
