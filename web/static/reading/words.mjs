/* The page's words for values that modules write: names, times, priorities, due times. */
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const PRIORITIES = { stat: "STAT", urgent: "Urgent", routine: "Routine" };

/** An element with attributes and children (text or nodes); never parses HTML. */
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

export function priorityName(value) {
  return PRIORITIES[value] || String(value || "");
}

/** DICOM PN as the server's person_name filter shows it: "FAMILY, Given Middle Suffix (Prefix)". */
export function personName(value) {
  for (const group of String(value || "").split("=")) {
    const [family = "", given = "", middle = "", prefix = "", suffix = ""] = group.split("^").map((p) => p.trim());
    if (![family, given, middle, prefix, suffix].some(Boolean)) {
      continue;
    }
    const givenNames = [given, middle, suffix].filter(Boolean).join(" ");
    const name = [family.toUpperCase(), givenNames].filter(Boolean).join(", ");
    return [name, prefix ? `(${prefix})` : ""].filter(Boolean).join(" ");
  }
  return "—";
}

const pad = (n) => String(n).padStart(2, "0");

/** "14 Mar 2026 09:05 UTC" in a <time> element, as the server's when() macro. */
export function when(iso) {
  if (!iso) {
    return document.createTextNode("—");
  }
  const moment = new Date(iso);
  const text = `${moment.getUTCDate()} ${MONTHS[moment.getUTCMonth()]} ${moment.getUTCFullYear()} ${pad(moment.getUTCHours())}:${pad(moment.getUTCMinutes())} UTC`;
  return element("time", { datetime: iso }, text);
}

/** "HH:MM" (UTC) of an ISO time. */
export function clock(moment = new Date()) {
  const date = moment instanceof Date ? moment : new Date(moment);
  return `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}`;
}

/** "12 min", "3 h 5 min", "2 days 4 h" (as the server's span()). */
export function span(seconds) {
  let minutes = Math.max(0, Math.floor(seconds / 60));
  if (minutes < 60) {
    return `${minutes} min`;
  }
  let hours = Math.floor(minutes / 60);
  minutes %= 60;
  if (hours < 24) {
    return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
  }
  const days = Math.floor(hours / 24);
  hours %= 24;
  const unit = days === 1 ? "day" : "days";
  return hours ? `${days} ${unit} ${hours} h` : `${days} ${unit}`;
}

/** "Overdue by 12 min" or "Due in 25 min". */
export function dueWords(iso, now = Date.now()) {
  const left = (Date.parse(iso) - now) / 1000;
  return left < 0 ? `Overdue by ${span(-left)}` : `Due in ${span(left)}`;
}
