/** The CSRF token of this page's session, from <meta name="csrf-token"> ("" when signed out). */
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") || "" : "";
}
