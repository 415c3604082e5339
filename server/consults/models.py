"""Who of the specialists is on duty now."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow


class Duty(Base):
    """A specialist's on-duty state: taking consults (and escalations) now, or not."""

    __tablename__ = "duty"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    on_duty: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
