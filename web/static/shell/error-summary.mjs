/** <div data-module="error-summary" tabindex="-1">: focused on load so screen readers announce it. */
export default class ErrorSummary {
  static moduleName = "error-summary";

  constructor(root) {
    root.focus();
  }
}
