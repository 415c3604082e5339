"""Alembic environment: runs on the connection handed over by server.db.upgrade."""

from __future__ import annotations

from alembic import context

from server.accounts import models as _accounts  # noqa: F401  (register tables)
from server.archive import models as _archive  # noqa: F401
from server.audit import models as _audit  # noqa: F401
from server.consults import models as _consults  # noqa: F401
from server.db import Base
from server.kiosk import models as _kiosk  # noqa: F401
from server.patients import models as _patients  # noqa: F401
from server.reading import models as _reading  # noqa: F401
from server.reports import models as _reports  # noqa: F401

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations with `doorstep db upgrade`.")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
