/* Doorstep web shell: CSRF-aware fetch, inactivity sign-out, small page helpers. No build step. */
(function () {
  "use strict";

  var SAFE = { GET: true, HEAD: true, OPTIONS: true };
  var WARN_BEFORE_MS = 60 * 1000;
  var KEEPALIVE_MS = 60 * 1000;
  var SHARED_KEY = "doorstep:last-activity";

  /** The CSRF token of this page's session ("" when signed out). */
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  /** fetch() for our own API: same-origin credentials, X-CSRF-Token on unsafe methods. */
  function doorstepFetch(url, options) {
    var opts = Object.assign({ credentials: "same-origin" }, options || {});
    var method = (opts.method || "GET").toUpperCase();
    var headers = new Headers(opts.headers || {});
    if (!SAFE[method]) {
      headers.set("X-CSRF-Token", csrfToken());
    }
    if (!headers.has("Accept")) {
      headers.set("Accept", "application/json");
    }
    opts.headers = headers;
    return window.fetch(url, opts);
  }

  /** Sign out now (form post with the CSRF token) and go to the sign-in page. */
  function signOut(reason) {
    var body = new URLSearchParams();
    body.set("csrf_token", csrfToken());
    var target = "/login" + (reason ? "?reason=" + encodeURIComponent(reason) : "");
    return window
      .fetch("/logout", {
        method: "POST",
        body: body,
        credentials: "same-origin",
        redirect: "manual",
      })
      .catch(function () {
        return null;
      })
      .then(function () {
        window.location.assign(target);
      });
  }

  /** Warn one minute before the idle limit, then sign out; any input starts the clock again. */
  function idleLogoff() {
    var info = document.getElementById("session-info");
    var toast = document.getElementById("idle-warning");
    if (!info || !toast) {
      return;
    }
    var minutes = parseFloat(info.getAttribute("data-idle-minutes") || "");
    if (!(minutes > 0)) {
      return;
    }
    var idleMs = minutes * 60 * 1000;
    var warnAfter = Math.max(idleMs - WARN_BEFORE_MS, 0);
    var lastActivity = Date.now();
    var lastServerContact = Date.now();
    var warnTimer = null;
    var logoffTimer = null;
    var signingOut = false;

    function shared() {
      try {
        return parseInt(window.localStorage.getItem(SHARED_KEY) || "0", 10) || 0;
      } catch (e) {
        return 0;
      }
    }

    function share(now) {
      try {
        window.localStorage.setItem(SHARED_KEY, String(now));
      } catch (e) {
        /* storage may be disabled; this tab still works on its own */
      }
    }

    function schedule() {
      window.clearTimeout(warnTimer);
      window.clearTimeout(logoffTimer);
      var elapsed = Date.now() - lastActivity;
      warnTimer = window.setTimeout(warn, Math.max(warnAfter - elapsed, 0));
      logoffTimer = window.setTimeout(expire, Math.max(idleMs - elapsed, 0));
    }

    function warn() {
      if (shared() > lastActivity) {
        lastActivity = shared();
        schedule();
        return;
      }
      toast.hidden = false;
    }

    function expire() {
      if (shared() > lastActivity) {
        lastActivity = shared();
        toast.hidden = true;
        schedule();
        return;
      }
      signingOut = true;
      signOut("idle");
    }

    function keepAlive(now) {
      // The server measures idleness by requests; tell it the person is still here.
      if (now - lastServerContact < KEEPALIVE_MS) {
        return;
      }
      lastServerContact = now;
      doorstepFetch("/api/v1/me").then(function (response) {
        if (response.status === 401) {
          signingOut = true;
          window.location.assign("/login?reason=idle");
        }
      }, function () {
        /* offline: the next activity tries again */
      });
    }

    function activity() {
      if (signingOut) {
        return;
      }
      var now = Date.now();
      if (now - lastActivity < 1000 && toast.hidden) {
        return;
      }
      lastActivity = now;
      toast.hidden = true;
      share(now);
      schedule();
      keepAlive(now);
    }

    ["keydown", "pointerdown", "wheel", "touchstart", "input"].forEach(function (name) {
      document.addEventListener(name, activity, { capture: true, passive: true });
    });
    document.addEventListener("mousemove", activity, { passive: true });
    window.addEventListener("storage", function (event) {
      if (event.key === SHARED_KEY && shared() > lastActivity) {
        lastActivity = shared();
        toast.hidden = true;
        schedule();
      }
    });
    var stay = toast.querySelector("[data-idle-stay]");
    if (stay) {
      stay.addEventListener("click", function () {
        lastServerContact = 0;
        activity();
      });
    }
    share(lastActivity);
    schedule();
  }

  /** Buttons with data-copy="#selector" copy that element's text. */
  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.querySelector(button.getAttribute("data-copy"));
        if (!source || !navigator.clipboard) {
          return;
        }
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          button.textContent = "Copied";
        });
      });
    });
  }

  /** Move focus to an error summary so screen readers announce it. */
  function focusOnLoad() {
    var target = document.querySelector("[data-focus-on-load]");
    if (target) {
      target.focus();
    }
  }

  window.Doorstep = { fetch: doorstepFetch, csrfToken: csrfToken, signOut: signOut };

  function start() {
    idleLogoff();
    copyButtons();
    focusOnLoad();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
