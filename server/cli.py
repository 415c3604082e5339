"""The `doorstep` command: serve, demo, database, orgs, users, tokens, audit, archive, doctor."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from server import db, logs
from server.accounts import administration, corrections
from server.accounts import service as accounts
from server.app import create_app
from server.archive.collection import DEFAULT_GRACE, CollectionReport, collect_orphans
from server.archive.lifetime import blob_root
from server.archive.storage import LocalBlobStorage
from server.audit import service as audit
from server.audit.checkpoints import Checkpoint
from server.errors import DomainError
from server.identity import Actor, OrgKind, Role
from server.settings import Settings

T = TypeVar("T")
log = logging.getLogger("doorstep")


def _operator(settings: Settings) -> audit.Recorder:
    """The audit recorder of the operator at this terminal (the actions write the events)."""
    actor = Actor(user_id=None, username=f"cli:{getpass.getuser()}"[:64], org_id=None)
    return audit.AuditLog(settings.resolved_secret_key()).recorder(actor)


async def _prepare_schema(settings: Settings, engine: AsyncEngine) -> None:
    """Migrate the embedded database automatically; PostgreSQL must be upgraded explicitly."""
    if settings.is_sqlite and settings.auto_upgrade:
        await db.upgrade(engine)
        return
    from server.package_data import migrations_dir

    head = _script_head(str(migrations_dir()))
    current = await db.current_revision(engine)
    if current != head:
        raise SystemExit(
            f"doorstep: the database schema is at {current or 'nothing'}, "
            f"this version needs {head}; run `doorstep db upgrade` first."
        )


def _script_head(location: str) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(location).get_current_head()


def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = db.create_engine(settings)
        try:
            await _prepare_schema(settings, engine)
            async with db.transaction(db.create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


def _run_server(settings: Settings, banner: Callable[[], None] | None = None) -> None:
    async def prepare() -> None:
        engine = db.create_engine(settings)
        try:
            await _prepare_schema(settings, engine)
        finally:
            await engine.dispose()

    asyncio.run(prepare())
    app = create_app(settings)
    if banner is not None:

        async def on_startup(_app: web.Application) -> None:
            banner()

        app.on_startup.append(on_startup)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        ssl_context=_ssl_context(settings),
        access_log_class=logs.AccessLogger,
        print=None,
        shutdown_timeout=10,
    )


def _url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url
    scheme = "https" if settings.tls_enabled else "http"
    host = "localhost" if settings.host in ("127.0.0.1", "0.0.0.0", "::") else settings.host  # noqa: S104
    return f"{scheme}://{host}:{settings.port}/"


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Run the server."""
    _run_server(
        settings, banner=lambda: log.info("Doorstep listening", extra={"url": _url(settings)})
    )
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Seed the demo network (when the database is empty) and run the server."""
    from server import demo

    seeder = audit.AuditLog(settings.resolved_secret_key()).recorder(
        Actor(user_id=None, username="cli", org_id=None)
    )
    logins = _with_session(settings, lambda s: demo.seed(session=s, audit=seeder))

    def banner() -> None:
        lines = [f"Doorstep demo is running at {_url(settings)}"]
        if logins is None:
            lines.append("(the database already held data, so nothing was seeded)")
        else:
            lines.append(f"Sign in with any of these (password: {demo.DEMO_PASSWORD}):")
            lines += [f"  {x.username:<15} {x.role.value:<11} {x.organisation}" for x in logins]
        print("\n".join(lines), flush=True)

    _run_server(settings, banner=banner)
    return 0


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    """Migrate the database to the newest schema."""

    async def run() -> str | None:
        engine = db.create_engine(settings)
        try:
            await db.upgrade(engine)
            return await db.current_revision(engine)
        finally:
            await engine.dispose()

    print(f"database at revision {asyncio.run(run())}")
    return 0


def cmd_org_add(settings: Settings, args: argparse.Namespace) -> int:
    """Create an organisation."""

    async def work(session: AsyncSession) -> int:
        org = await administration.create_organisation(
            session=session,
            audit=_operator(settings),
            name=args.name,
            kind=OrgKind(args.kind),
            ae_title=args.ae_title,
        )
        return org.id

    print(f"organisation {args.name!r} created (id {_with_session(settings, work)})")
    return 0


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat password: "):
            raise DomainError("The passwords differ.")
        return first
    return None


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    """Create a user in an organisation."""
    password = _read_password(args)

    async def work(session: AsyncSession) -> int:
        org = await accounts.get_org_by_name(session=session, name=args.org)
        user = await administration.create_user(
            session=session,
            audit=_operator(settings),
            username=args.username,
            display_name=args.display_name or "",
            org=org,
            role=Role(args.role),
            password=password,
            specialties=args.specialty or (),
        )
        return user.id

    user_id = _with_session(settings, work)
    note = "" if password else " without a password (sign in with a token)"
    print(f"user {args.username!r} created (id {user_id}){note}")
    return 0


def cmd_user_password(settings: Settings, args: argparse.Namespace) -> int:
    """Set a user's password (their web sessions end); audited as from the admin page."""
    password = _read_password(args)
    if password is None:
        raise DomainError("No terminal to ask for the password: pass it with --password-stdin.")

    async def work(session: AsyncSession) -> None:
        user = await accounts.get_user(session=session, username=args.username)
        await corrections.reset_password(
            session=session, audit=_operator(settings), changes=None, user=user, password=password
        )

    _with_session(settings, work)
    print(f"password of {args.username!r} changed; their web sessions have ended")
    return 0


def cmd_token_create(settings: Settings, args: argparse.Namespace) -> int:
    """Issue a bearer token for a user and print only the token."""

    async def work(session: AsyncSession) -> str:
        user = await accounts.get_user(session=session, username=args.username)
        issued = await administration.issue_token(
            session=session,
            audit=_operator(settings),
            user=user,
            label=args.label,
            expires_days=args.expires_days,
        )
        return issued.token

    print(_with_session(settings, work))
    return 0


def _read_checkpoints(path: Path | None, secret: bytes) -> list[Checkpoint]:
    """Checkpoints from a file: one per line, as logged or printed (other lines are skipped)."""
    if path is None:
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DomainError(f"Cannot read the checkpoint file {path}: {error}") from None
    found = []
    for line in text.splitlines():
        start = line.find('{"')
        if start >= 0 and "doorstep.audit.checkpoint" in line:
            found.append(Checkpoint.from_json(line[start : line.rindex("}") + 1], secret))
    if not found:
        raise DomainError(f"{path} holds no audit checkpoint.")
    return found


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Check the audit log's hash chain (and checkpoints); exit 0 when intact."""
    secret = settings.resolved_secret_key()
    anchors = _read_checkpoints(args.checkpoint, secret)
    report = _with_session(
        settings, lambda s: audit.verify(session=s, secret=secret, checkpoints=anchors)
    )
    if report.intact:
        against = f", consistent with {len(anchors)} checkpoint(s)" if anchors else ""
        print(f"audit log intact: {report.events} events{against}")
        return 0
    print(f"audit log damaged ({report.events} events checked):", file=sys.stderr)
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


def cmd_audit_checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    """Print a signed checkpoint of the audit log (one JSON line) for safekeeping elsewhere."""
    secret = settings.resolved_secret_key()
    found = _with_session(settings, lambda s: audit.checkpoint(session=s, secret=secret))
    print(found.to_json())
    return 0


def cmd_archive_collect(settings: Settings, args: argparse.Namespace) -> int:
    """Remove stored blobs that no instance refers to and that are older than the grace."""

    async def run() -> CollectionReport:
        engine = db.create_engine(settings)
        try:
            await _prepare_schema(settings, engine)
            return await collect_orphans(
                db.create_sessionmaker(engine),
                LocalBlobStorage(blob_root(settings.data_dir)),
                grace=timedelta(minutes=args.grace_minutes),
            )
        finally:
            await engine.dispose()

    print(asyncio.run(run()).summary())
    return 0


def _minutes(value: str) -> int:
    try:
        minutes = int(value)
    except ValueError:
        minutes = 0
    if minutes < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of minutes, at least 1: {value!r}")
    return minutes


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    """Check configuration and dependencies."""
    from server import doctor

    return doctor.run(settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="doorstep", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def listener(name: str, handler: Callable[..., int], text: str) -> None:
        p = commands.add_parser(name, help=text, description=text)
        p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
        p.add_argument("--port", type=int, help="HTTP port (default 8080)")
        p.add_argument(
            "--dicom-port", type=int, help="DICOM DIMSE port, 0 disables (default 11112)"
        )
        p.set_defaults(handler=handler)

    listener("serve", cmd_serve, "Run the Doorstep server.")
    listener(
        "demo", cmd_demo, "Run the server with a seeded demo network; prints the URL and logins."
    )

    database = commands.add_parser("db", help="Database schema.").add_subparsers(
        dest="db_command", required=True, metavar="COMMAND"
    )
    database.add_parser("upgrade", help="Migrate to the newest schema.").set_defaults(
        handler=cmd_db_upgrade
    )

    org = commands.add_parser("org", help="Organisations.").add_subparsers(
        dest="org_command", required=True, metavar="COMMAND"
    )
    org_add = org.add_parser("add", help="Create an organisation.")
    org_add.add_argument("name")
    org_add.add_argument("--kind", required=True, choices=[k.value for k in OrgKind])
    org_add.add_argument("--ae-title", help="DICOM calling AE title of the organisation's devices")
    org_add.set_defaults(handler=cmd_org_add)

    user = commands.add_parser("user", help="Users.").add_subparsers(
        dest="user_command", required=True, metavar="COMMAND"
    )
    user_add = user.add_parser("add", help="Create a user.")
    user_add.add_argument("username")
    user_add.add_argument("--org", required=True, help="organisation name")
    user_add.add_argument("--role", required=True, choices=[r.value for r in Role])
    user_add.add_argument(
        "--specialty", action="append", help="specialist's specialty (repeatable)"
    )
    user_add.add_argument("--display-name", help="name shown in the interface")
    user_add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    user_add.set_defaults(handler=cmd_user_add)
    user_password = user.add_parser(
        "password",
        help="Set a user's password (prompts twice on a terminal).",
        description="Set a user's password; their web sessions end. Prompts twice on a "
        "terminal; otherwise pass --password-stdin.",
    )
    user_password.add_argument("username")
    user_password.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    user_password.set_defaults(handler=cmd_user_password)

    token = commands.add_parser("token", help="API bearer tokens.").add_subparsers(
        dest="token_command", required=True, metavar="COMMAND"
    )
    token_create = token.add_parser("create", help="Issue a token; prints only the token.")
    token_create.add_argument("username")
    token_create.add_argument("--expires-days", type=int, default=90)
    token_create.add_argument("--label", default="cli")
    token_create.set_defaults(handler=cmd_token_create)

    audit_cmd = commands.add_parser("audit", help="Audit log.").add_subparsers(
        dest="audit_command", required=True, metavar="COMMAND"
    )
    verify = audit_cmd.add_parser("verify", help="Check the hash chain; exit 0 when intact.")
    verify.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="also check against the signed checkpoints in FILE (one per line, e.g. server logs)",
    )
    verify.set_defaults(handler=cmd_audit_verify)
    audit_cmd.add_parser(
        "checkpoint", help="Print a signed checkpoint (count, head hash, time) as one JSON line."
    ).set_defaults(handler=cmd_audit_checkpoint)
    archive_cmd = commands.add_parser("archive", help="DICOM archive.").add_subparsers(
        dest="archive_command", required=True, metavar="COMMAND"
    )
    collect = archive_cmd.add_parser(
        "collect", help="Remove stored blobs that no instance refers to; prints a summary."
    )
    collect.add_argument(
        "--grace-minutes",
        type=_minutes,
        metavar="N",
        default=int(DEFAULT_GRACE.total_seconds() // 60),
        help="keep unreferenced blobs younger than this, still being stored (default 60)",
    )
    collect.set_defaults(handler=cmd_archive_collect)
    commands.add_parser("doctor", help="Check configuration and dependencies.").set_defaults(
        handler=cmd_doctor
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `doorstep` command."""
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {
        k: v for k in ("host", "port", "dicom_port") if (v := getattr(args, k, None)) is not None
    }
    settings = Settings(**overrides)
    logs.configure(level=settings.log_level, json_lines=settings.log_json)
    try:
        code: int = args.handler(settings, args)
    except DomainError as error:
        print(f"doorstep: {error.message}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
