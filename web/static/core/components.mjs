/*
 * Every component by its data-module name. A class is loaded with every page; a big feature
 * (viewers, the call) registers { load: () => import("../feature/x.mjs") } instead and is fetched
 * only by pages that use it (its controls should stay inert until it has started).
 */
import ConsultAlerts from "../consults/consult-alerts.mjs";
import DutyToggle from "../consults/duty-toggle.mjs";
import CopyButton from "../shell/copy-button.mjs";
import ErrorSummary from "../shell/error-summary.mjs";
import IdleLogoff from "../shell/idle-logoff.mjs";
import Upload from "../uploads/upload.mjs";

export const components = new Map([
  [ConsultAlerts.moduleName, ConsultAlerts],
  [CopyButton.moduleName, CopyButton],
  [DutyToggle.moduleName, DutyToggle],
  [ErrorSummary.moduleName, ErrorSummary],
  [IdleLogoff.moduleName, IdleLogoff],
  [Upload.moduleName, Upload],
  ["viewer", { load: () => import("../viewer/viewer.mjs") }],
  ["ecg-viewer", { load: () => import("../ecg/ecg-viewer.mjs") }],
  ["worklist", { load: () => import("../reading/worklist.mjs") }],
  ["report-editor", { load: () => import("../reading/report-editor.mjs") }],
  ["reports-live", { load: () => import("../reports/reports-live.mjs") }],
  ["addendum", { load: () => import("../reports/addendum.mjs") }],
  ["consult-live", { load: () => import("../consults/consult-live.mjs") }],
  ["consult-call", { load: () => import("../consults/consult-call.mjs") }],
  ["guest-invite", { load: () => import("../consults/guest-invite.mjs") }],
  ["call-recording", { load: () => import("../consults/call-recording.mjs") }],
  ["call-notes", { load: () => import("../consults/call-notes.mjs") }],
  ["consult-check", { load: () => import("../consults/consult-check.mjs") }],
  ["enrol-keypad", { load: () => import("../kiosk/enrol-keypad.mjs") }],
  ["kiosk-app", { load: () => import("../kiosk/kiosk-app.mjs") }],
  ["kiosk-vitals", { load: () => import("../kiosk/kiosk-vitals.mjs") }],
]);
