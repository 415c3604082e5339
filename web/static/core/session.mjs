/* The signed-in session of this page. */
import { csrfToken } from "./csrf.mjs";

/** Sign out now (a form post with the CSRF token) and go to the sign-in page. */
export async function signOut(reason = "") {
  const body = new URLSearchParams();
  body.set("csrf_token", csrfToken());
  const target = "/login" + (reason ? "?reason=" + encodeURIComponent(reason) : "");
  try {
    await window.fetch("/logout", {
      method: "POST",
      body,
      credentials: "same-origin",
      redirect: "manual",
    });
  } catch {
    /* offline: the server ends an idle session by itself */
  }
  window.location.assign(target);
}
