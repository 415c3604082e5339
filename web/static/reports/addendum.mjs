/*
 * <form data-module="addendum" data-report-id>: a specialist's signed addendum to a report
 * (POST /api/v1/reports/{id}/addenda {text, password}); the page then shows it in the list.
 */
import { ApiError, fetchJson } from "../core/fetch.mjs";

export default class Addendum {
  static moduleName = "addendum";

  #form;
  #error;

  constructor(form) {
    this.#form = form;
    this.#error = form.querySelector("[data-addendum-error]");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#send();
    });
  }

  async #send() {
    const { text, password } = this.#form.elements;
    if (!text.value.trim()) {
      this.#problem("Write the addendum first.", text);
      return;
    }
    if (!password.value) {
      this.#problem("Type your password to sign.", password);
      return;
    }
    const button = this.#form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const id = encodeURIComponent(this.#form.dataset.reportId);
      const signed = await fetchJson(`/api/v1/reports/${id}/addenda`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text: text.value, password: password.value }),
      });
      window.location.assign(`/reports/${encodeURIComponent(signed.report_id)}`);
    } catch (error) {
      password.value = "";
      if (error instanceof ApiError && error.status === 401) {
        this.#problem("That password is not right.", password);
      } else {
        this.#problem(error instanceof ApiError ? error.message : "The addendum could not be signed; try again.", text);
      }
      button.disabled = false;
    }
  }

  #problem(message, field) {
    this.#error.textContent = message;
    this.#error.hidden = false;
    field.focus();
  }
}
