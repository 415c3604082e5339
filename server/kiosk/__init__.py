"""The medical-corner kiosk: device enrolment, check-in, vitals with triage, the on-duty
queue into a video consult, follow-ups, history and the roster."""
