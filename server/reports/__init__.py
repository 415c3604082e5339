"""Signed reports: the record, the deployment's signing authority, PDF, PAdES signature and verification."""  # noqa: E501
