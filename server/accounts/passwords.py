"""Argon2id password hashing, run off the event loop."""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """A fixed hash checked for unknown users, so timing does not reveal which names exist."""
    return _HASHER.hash("doorstep-timing-equaliser")


MIN_LENGTH = 10


async def hash_password(password: str) -> str:
    """Argon2id hash of a password."""
    return await asyncio.to_thread(_HASHER.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when the password matches; always spends the same work."""

    def check() -> bool:
        try:
            return (
                _HASHER.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)
