/*
 * <div data-module="reports-live">: the clinic's reports list, kept current. On every (re)connect
 * of the events WebSocket and on each report.* event it fetches GET /api/v1/reports and redraws
 * the rows; a newly signed report also shows a toast "New report from Dr …".
 */
import { ApiError, fetchJson } from "../core/fetch.mjs";
import { EventStream } from "../reading/events.mjs";
import { element, personName, when } from "../reading/words.mjs";

export default class ReportsLive {
  static moduleName = "reports-live";

  #root;
  #rows;
  #table;
  #empty;
  #live;
  #toast;
  #known = null;

  constructor(root) {
    this.#root = root;
    this.#rows = root.querySelector("[data-reports-rows]");
    this.#table = root.querySelector("[data-reports-table]");
    this.#empty = root.querySelector("[data-reports-empty]");
    this.#live = root.querySelector("[data-reports-live]");
    this.#toast = root.querySelector("[data-reports-toast]");
    this.#known = new Set([...this.#rows.rows].map((row) => row.dataset.reportId));
    this.#toast.querySelector("[data-reports-toast-close]").addEventListener("click", () => {
      this.#toast.hidden = true;
    });
    new EventStream({
      onOpen: () => this.#refresh(),
      onEvent: (channel, event) => this.#event(event),
    }).start();
  }

  #event(event) {
    if (!event || !event.report || !["report.signed", "report.addendum"].includes(event.type)) {
      return;
    }
    const report = event.report;
    const signer = report.signer && typeof report.signer === "object" ? report.signer.display_name : report.signer;
    const text = event.type === "report.signed" ? `New report from ${signer}` : `New addendum from ${signer}`;
    this.#toast.querySelector("[data-reports-toast-text]").textContent = text;
    this.#toast.querySelector("[data-reports-toast-link]").href = `/reports/${encodeURIComponent(report.report_id)}`;
    this.#toast.hidden = false;
    this.#live.textContent = `${text}.`;
    this.#refresh();
  }

  async #refresh() {
    let reports;
    try {
      reports = await fetchJson("/api/v1/reports?limit=200");
    } catch (error) {
      this.#live.textContent = error instanceof ApiError ? error.message : "The list could not be refreshed.";
      return;
    }
    this.#rows.replaceChildren(...reports.map((report) => this.#row(report)));
    this.#known = new Set(reports.map((report) => String(report.report_id)));
    this.#table.hidden = reports.length === 0;
    this.#empty.hidden = reports.length !== 0;
    this.#root.dataset.reportsSynced = String(Date.now());
  }

  #row(report) {
    const row = element("tr", { "data-report-id": String(report.report_id) });
    if (!this.#known.has(String(report.report_id))) {
      row.className = "reports-row-new";
    }
    const patient = element(
      "th",
      { scope: "row", "data-label": "Patient" },
      element("a", { href: `/reports/${encodeURIComponent(report.report_id)}` }, personName(report.patient_name)),
    );
    if (report.kind === "addendum") {
      patient.append(" ", element("span", { class: "badge" }, "Addendum"));
    }
    const receipt = report.acknowledged_at
      ? document.createTextNode(`Acknowledged by ${report.acknowledged_by}`)
      : element("span", { class: "badge reports-new" }, "New");
    const specialty = String(report.specialty || "");
    row.append(
      patient,
      element("td", { "data-label": "Specialty" }, specialty.charAt(0).toUpperCase() + specialty.slice(1)),
      element("td", { "data-label": "Signed by" }, String(report.signer || "")),
      element("td", { "data-label": "Signed" }, when(report.signed_at)),
      element("td", { "data-label": "Impression", class: "reports-impression" }, report.impression || "—"),
      element("td", { "data-label": "Receipt" }, receipt),
    );
    return row;
  }
}
