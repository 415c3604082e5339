"""Names of event channels, so publishers and subscribers agree."""

from __future__ import annotations


def user(user_id: int) -> str:
    """Events for one user."""
    return f"user:{user_id}"


def org(org_id: int) -> str:
    """Events for every member of an organisation."""
    return f"org:{org_id}"


def specialty(name: str) -> str:
    """Events for every reader of a specialty (its worklist)."""
    return f"specialty:{name}"
