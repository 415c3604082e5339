"""Signed checkpoints of the audit log: anchors kept outside the database.

A checkpoint states how far the log reached at a moment (its event count, its
newest event's id and hash) and carries a MAC keyed by the secret. Kept in an
external log store (the server logs one periodically; `doorstep audit
checkpoint` prints one), it lets `doorstep audit verify --checkpoint FILE`
detect a log cut off behind it, even when the chain head was rewound with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.errors import InvalidInput

_KIND = "doorstep.audit.checkpoint.v1"


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, b"doorstep-audit-checkpoint-v1", hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far the audit log reached at a moment, signed."""

    count: int
    head_id: int
    head_hash: str
    at: datetime
    mac: str

    @classmethod
    def signed(
        cls, secret: bytes, *, count: int, head_id: int, head_hash: str, at: datetime
    ) -> Checkpoint:
        """A checkpoint with its MAC."""
        body = _body(count, head_id, head_hash, at)
        return cls(count, head_id, head_hash, at, _mac(secret, body))

    def to_json(self) -> str:
        """One JSON line: what an external log store keeps."""
        return json.dumps(
            {
                **json.loads(_body(self.count, self.head_id, self.head_hash, self.at)),
                "mac": self.mac,
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, line: str, secret: bytes) -> Checkpoint:
        """A checkpoint read back; refused when malformed or when its MAC does not match."""
        try:
            data: Any = json.loads(line)
            if not isinstance(data, dict) or data.get("kind") != _KIND:
                raise ValueError("not an audit checkpoint")
            found = cls(
                count=int(data["count"]),
                head_id=int(data["head_id"]),
                head_hash=str(data["head_hash"]),
                at=datetime.fromisoformat(str(data["at"])),
                mac=str(data["mac"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidInput(f"Not an audit checkpoint: {error}.") from None
        body = _body(found.count, found.head_id, found.head_hash, found.at)
        if not hmac.compare_digest(found.mac, _mac(secret, body)):
            raise InvalidInput(
                "The checkpoint's MAC does not match: it was changed, or made with another key."
            )
        return found


def _body(count: int, head_id: int, head_hash: str, at: datetime) -> str:
    return json.dumps(
        {
            "kind": _KIND,
            "count": count,
            "head_id": head_id,
            "head_hash": head_hash,
            "at": at.isoformat(),
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def _mac(secret: bytes, body: str) -> str:
    return hmac.new(_key(secret), body.encode(), hashlib.sha256).hexdigest()
