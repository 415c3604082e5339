"""Signed reports: the record, the signing authority, the PDF, its signature, verification."""
