/*
 * <div data-module="worklist" data-me data-query>: the specialist's worklist, kept current without
 * a reload. It listens to the events WebSocket (reading.* events) and, on every (re)connect and
 * after each event, fetches GET /api/v1/worklist with the page's filters and redraws the rows
 * (events are not durable, so the list is the truth). Claim, Release and Next case go through the
 * API; without script the same buttons are plain forms.
 */
import { ApiError, apiFetch, fetchJson } from "../core/fetch.mjs";
import { csrfToken } from "../core/csrf.mjs";
import { EventStream } from "./events.mjs";
import { dueWords, element, personName, priorityName, when } from "./words.mjs";

const REFRESH_DELAY_MS = 150;
const CLOCK_MS = 30_000;

export default class Worklist {
  static moduleName = "worklist";

  #root;
  #me;
  #query;
  #rows;
  #table;
  #empty;
  #live;
  #connection;
  #items = [];
  #known = null;
  #refreshTimer = 0;
  #stream;

  constructor(root) {
    this.#root = root;
    this.#me = root.dataset.me || "";
    this.#query = root.dataset.query || "";
    this.#rows = root.querySelector("[data-worklist-rows]");
    this.#table = root.querySelector("[data-worklist-table]");
    this.#empty = root.querySelector("[data-worklist-empty]");
    this.#live = root.querySelector("[data-worklist-live]");
    this.#connection = root.querySelector("[data-worklist-connection]");
    root.addEventListener("submit", (event) => this.#submit(event));
    const next = document.querySelector("[data-worklist-next]");
    next?.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#nextCase();
    });
    this.#stream = new EventStream({
      onOpen: () => {
        this.#connection.textContent = "Live: this list updates by itself.";
        this.#refresh();
      },
      onClose: (seconds) => {
        this.#connection.textContent = `Live updates are interrupted; trying again in ${seconds} s.`;
      },
      onEvent: (channel, event) => this.#event(event),
    });
    this.#stream.start();
    window.setInterval(() => this.#tick(), CLOCK_MS);
  }

  /** An event of the stream: say what changed, then fetch the list again. */
  #event(event) {
    if (!event || typeof event.type !== "string" || !event.type.startsWith("reading.")) {
      return;
    }
    const request = event.request || {};
    const number = `Request ${request.id}`;
    const messages = {
      "reading.new": `New ${priorityName(request.priority)} ${request.specialty} request from ${request.clinic}.`,
      "reading.claimed":
        request.claimed_by === this.#me ? `You claimed request ${request.id}.` : `${number} was claimed by ${request.claimed_by}.`,
      "reading.released": `${number} is waiting again.`,
      "reading.signed": `${number} was signed and has left the list.`,
      "reading.overdue": `${number} is overdue.`,
    };
    this.#say(messages[event.type] || "");
    this.#scheduleRefresh();
  }

  #scheduleRefresh() {
    window.clearTimeout(this.#refreshTimer);
    this.#refreshTimer = window.setTimeout(() => this.#refresh(), REFRESH_DELAY_MS);
  }

  async #refresh() {
    try {
      const filtered = this.#query !== "";
      const [shown, open] = await Promise.all([
        fetchJson(`/api/v1/worklist${filtered ? `?${this.#query}` : ""}`),
        filtered ? fetchJson("/api/v1/worklist") : null,
      ]);
      this.#items = shown;
      this.#render();
      this.#count(open || shown);
      this.#root.dataset.worklistSynced = String(Date.now());
    } catch (error) {
      this.#connection.textContent =
        error instanceof ApiError ? `The list could not be refreshed: ${error.message}` : "The list could not be refreshed.";
    }
  }

  #render() {
    const now = Date.now();
    const before = this.#known;
    this.#rows.replaceChildren(...this.#items.map((item) => this.#row(item, now, before)));
    this.#known = new Set(this.#items.map((item) => item.id));
    this.#table.hidden = this.#items.length === 0;
    this.#empty.hidden = this.#items.length !== 0;
  }

  #count(items) {
    const now = Date.now();
    const counts = {
      waiting: items.filter((i) => i.status === "waiting").length,
      claimed: items.filter((i) => i.status === "claimed").length,
      overdue: items.filter((i) => isOpen(i) && Date.parse(i.due_at) < now).length,
      mine: items.filter((i) => i.status === "claimed" && i.claimed_by === this.#me).length,
    };
    for (const [name, value] of Object.entries(counts)) {
      const place = this.#root.querySelector(`[data-count="${name}"]`);
      if (place) {
        place.textContent = String(value);
      }
    }
    this.#root.querySelector('[data-count-item="overdue"]')?.classList.toggle("reading-count-late", counts.overdue > 0);
  }

  /** Due words and the overdue highlight move with the clock between events. */
  #tick() {
    const now = Date.now();
    for (const row of this.#rows.rows) {
      const item = this.#items.find((i) => String(i.id) === row.dataset.requestId);
      if (!item) {
        continue;
      }
      const late = isOpen(item) && Date.parse(item.due_at) < now;
      row.classList.toggle("reading-overdue", late);
      const words = row.querySelector("[data-due-words]");
      if (words) {
        words.textContent = dueWords(item.due_at, now);
        words.className = late ? "reading-late" : "muted";
      }
    }
  }

  #row(item, now, before) {
    const late = isOpen(item) && Date.parse(item.due_at) < now;
    const row = element("tr", { class: "reading-row", "data-request-id": String(item.id) });
    row.classList.toggle("reading-overdue", late);
    if (before && !before.has(item.id)) {
      row.classList.add("reading-row-new");
    }
    const due = element("td", { "data-label": "Due" }, when(item.due_at));
    if (isOpen(item)) {
      due.append(
        element("br"),
        element("span", { class: late ? "reading-late" : "muted", "data-due-words": "" }, dueWords(item.due_at, now)),
      );
    }
    const patient = element("th", { scope: "row", "data-label": "Patient" }, personName(item.patient_name));
    const study = element(
      "td",
      { "data-label": "Study" },
      `${item.study_description || "Study"} `,
      element("span", { class: "muted" }, `(${item.modalities.join(", ") || "—"}, ${item.specialty})`),
    );
    row.append(
      element(
        "td",
        { "data-label": "Priority" },
        element("span", { class: `reading-priority-badge reading-${item.priority}` }, priorityName(item.priority)),
      ),
      due,
      patient,
      study,
      element("td", { "data-label": "Clinic" }, item.clinic),
      element("td", { "data-label": "Question", class: "reading-question" }, item.question || "—"),
      element("td", { "data-label": "Status", "data-status": "" }, this.#status(item)),
      this.#actions(item),
    );
    return row;
  }

  #status(item) {
    if (item.status === "claimed") {
      return item.claimed_by === this.#me ? "Claimed by you" : `Claimed by ${item.claimed_by}`;
    }
    return { signed: "Signed", cancelled: "Cancelled" }[item.status] || "Waiting";
  }

  #actions(item) {
    const cell = element("td", { "data-label": "Actions", class: "reading-actions" });
    const hidden = element("span", { class: "visually-hidden" }, ` request ${item.id}`);
    if (item.status === "waiting") {
      cell.append(this.#form(item.id, "claim", "Claim", "button-primary"));
    } else if (item.status === "claimed" && item.claimed_by === this.#me) {
      const open = element(
        "a",
        { class: "button button-primary button-small", href: viewerUrl(item.study_uid, item.id) },
        "Open",
        hidden,
      );
      cell.append(open, this.#form(item.id, "release", "Release", "button-secondary"));
    } else if (item.status === "signed" && item.report_id) {
      cell.append(element("a", { href: `/reports/${item.report_id}` }, "Report"));
    }
    return cell;
  }

  #form(id, action, label, style) {
    return element(
      "form",
      { method: "post", action: `/worklist/${id}/${action}`, class: "inline", "data-action": action },
      element("input", { type: "hidden", name: "csrf_token", value: csrfToken() }),
      element("input", { type: "hidden", name: "back", value: this.#query }),
      element(
        "button",
        { type: "submit", class: `button ${style} button-small` },
        label,
        element("span", { class: "visually-hidden" }, ` request ${id}`),
      ),
    );
  }

  async #submit(event) {
    const form = event.target.closest("form[data-action]");
    if (!form || !this.#rows.contains(form)) {
      return;
    }
    event.preventDefault();
    const action = form.dataset.action;
    const id = form.closest("tr").dataset.requestId;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await fetchJson(`/api/v1/reading-requests/${id}/${action}`, { method: "POST" });
      const item = this.#items.find((i) => String(i.id) === id);
      if (item && action === "claim") {
        Object.assign(item, { status: "claimed", claimed_by: this.#me });
      } else if (item) {
        Object.assign(item, { status: "waiting", claimed_by: null });
      }
      this.#render();
      this.#say(action === "claim" ? `You claimed request ${id}.` : `You released request ${id}.`);
    } catch (error) {
      this.#say(error instanceof ApiError ? error.message : "That did not work; try again.", true);
      button.disabled = false;
    }
    this.#scheduleRefresh();
  }

  async #nextCase() {
    let response;
    try {
      response = await apiFetch("/api/v1/reading-requests/next", { method: "POST" });
    } catch {
      this.#say("The connection to the server failed; try again.", true);
      return;
    }
    if (response.status === 204) {
      this.#say("Nothing is waiting.", true);
      return;
    }
    if (!response.ok) {
      this.#say(`Next case did not work (the server answered ${response.status}).`, true);
      return;
    }
    const claimed = await response.json();
    const known = this.#items.find((i) => i.id === claimed.id);
    const item = known || (await fetchJson(`/api/v1/reading-requests/${claimed.id}`));
    window.location.assign(viewerUrl(item.study_uid, item.id));
  }

  /** Tell screen readers (politely), and show it when `visible`. */
  #say(text, visible = false) {
    if (!text) {
      return;
    }
    this.#live.textContent = text;
    if (visible) {
      let notice = document.querySelector("[data-worklist-notice]");
      if (!notice) {
        notice = element("p", { class: "alert alert-info", "data-worklist-notice": "" });
        this.#root.prepend(notice);
      }
      notice.textContent = text;
    }
  }
}

function isOpen(item) {
  return item.status === "waiting" || item.status === "claimed";
}

function viewerUrl(studyUid, id) {
  return `/studies/${encodeURIComponent(studyUid)}/view?request=${encodeURIComponent(id)}`;
}
