/** <button data-module="copy-button" data-copy="#selector">: copies that element's text. */
export default class CopyButton {
  static moduleName = "copy-button";

  constructor(button) {
    button.addEventListener("click", () => {
      const source = document.querySelector(button.getAttribute("data-copy"));
      if (!source || !navigator.clipboard) {
        return;
      }
      navigator.clipboard.writeText(source.textContent.trim()).then(() => {
        button.textContent = "Copied";
      });
    });
  }
}
