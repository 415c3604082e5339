"""Tests of remote reading: requests, worklists, claims and the SLA watch."""
