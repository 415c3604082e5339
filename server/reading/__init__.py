"""Remote reading: reading requests, specialty worklists, leased claims and SLA escalation."""
