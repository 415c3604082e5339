"""Doorstep: telemedicine server for primary-care networks."""
