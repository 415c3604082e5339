"""The `doorstep` command: serve, demo, database, orgs, users, tokens, audit, archive, verify,
signing, doctor."""

from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import logging
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from server import db, logs, serving
from server.accounts import administration, corrections, dicom_peers
from server.accounts import service as accounts
from server.archive.collection import DEFAULT_GRACE, CollectionReport, collect_orphans
from server.archive.lifetime import blob_root
from server.archive.storage import LocalBlobStorage
from server.audit import service as audit
from server.audit.checkpoints import Checkpoint
from server.errors import DomainError
from server.identity import Actor, OrgKind, Role
from server.settings import InvalidSetting, Settings

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
    # Imported here: the application (every feature, numpy/scipy for the ECG) takes seconds
    # to import, which the commands that only touch the database should not pay.
    from server.app import create_app

    async def prepare() -> None:
        engine = db.create_engine(settings)
        try:
            await _prepare_schema(settings, engine)
        finally:
            await engine.dispose()

    asyncio.run(prepare())
    serving.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ssl_context=_ssl_context(settings),
        access_log_class=logs.AccessLogger,
        shutdown_timeout=10,
        started=banner,
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
    found = _with_session(settings, lambda s: demo.seed(session=s, audit=seeder))
    if found.seeded:
        _with_session(
            settings,
            lambda s: demo.seed_kiosk_person(
                session=s, audit=seeder, secret=settings.resolved_secret_key()
            ),
        )
    code = None
    if found.logins:
        code = _with_session(settings, lambda s: demo.kiosk_enrolment(session=s, audit=seeder))
    if found.logins:  # the demo's own network: its studies too (each stored once)
        asyncio.run(demo.seed_studies(settings, seeder))

    def banner() -> None:
        lines = [f"Doorstep demo is running at {_url(settings)}"]
        if found.logins:
            lines.append(f"Sign in with any of these (password: {demo.DEMO_PASSWORD}):")
            lines += [
                f"  {x.username:<15} {x.role.value:<11} {x.organisation}" for x in found.logins
            ]
            if code is not None:
                lines.append(
                    f"Open the kiosk (one use, {demo.DEMO_ENROLMENT.seconds // 3600} h): "
                    f"{_url(settings).rstrip('/')}/kiosk?enrol={code}"
                )
            lines.append(
                f"At the kiosk, a returning person: mobile {demo.KIOSK_PERSON_PHONE}, "
                f"born {demo.KIOSK_PERSON_BIRTH.isoformat()}"
            )
        else:
            lines.append("(the database already held data, so nothing was seeded)")
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


def _peer_summary(networks: Sequence[str]) -> str:
    return ", ".join(networks) if networks else "none (loopback peers only)"


def cmd_org_add(settings: Settings, args: argparse.Namespace) -> int:
    """Create an organisation."""

    async def work(session: AsyncSession) -> tuple[int, list[str]]:
        org = await administration.create_organisation(
            session=session,
            audit=_operator(settings),
            name=args.name,
            kind=OrgKind(args.kind),
            ae_title=args.ae_title,
            dicom_peers=args.dicom_peer or (),
            dicom_cert_sha256=args.dicom_cert_sha256,
        )
        return org.id, await dicom_peers.networks_of(session=session, org_id=org.id)

    org_id, networks = _with_session(settings, work)
    print(f"organisation {args.name!r} created (id {org_id})")
    if args.ae_title:
        print(f"DICOM peers of {args.ae_title}: {_peer_summary(networks)}")
    return 0


def cmd_org_update(settings: Settings, args: argparse.Namespace) -> int:
    """Change an organisation's AE title, DICOM peers or pinned client certificate."""

    async def work(session: AsyncSession) -> tuple[bool, str | None, list[str], str | None]:
        org = await accounts.get_org_by_name(session=session, name=args.name)
        change = await administration.update_organisation(
            session=session,
            audit=_operator(settings),
            org=org,
            ae_title=args.ae_title,
            add_dicom_peers=args.dicom_peer or (),
            clear_dicom_peers=args.clear_dicom_peers,
            dicom_cert_sha256=args.dicom_cert_sha256,
            clear_dicom_cert=args.clear_dicom_cert,
        )
        networks = await dicom_peers.networks_of(session=session, org_id=org.id)
        return bool(change.changes), org.ae_title, networks, org.dicom_cert_sha256

    changed, ae_title, networks, cert = _with_session(settings, work)
    print(f"organisation {args.name!r} {'updated' if changed else 'unchanged'}")
    print(f"AE title: {ae_title or 'none'}")
    print(f"DICOM peers: {_peer_summary(networks)}")
    print(f"DICOM client certificate: {f'SHA-256 {cert}' if cert else 'none pinned'}")
    return 0


_GIVE_ONE = (
    "pipe it with --password-stdin, or pass --no-password for an account that signs in "
    "only with API tokens"
)


def _read_password(args: argparse.Namespace, *, give_one: str = _GIVE_ONE) -> str | None:
    """A password: from stdin, typed twice at a terminal, or none when --no-password says so."""
    if getattr(args, "no_password", False):
        return None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat password: "):
            raise DomainError("The passwords differ.")
    else:
        raise DomainError(f"No password given and stdin is not a terminal: {give_one}.")
    if not password:
        raise DomainError(f"The password is empty: {give_one}.")
    return password


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
    password = _read_password(args, give_one="pipe it with --password-stdin")
    assert password is not None  # `user password` has no --no-password

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


def cmd_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Verify a signed report PDF offline; exit 0 when intact, 1 when not."""
    from cryptography import x509

    from server.reports.verification import verify_report_pdf

    try:
        pdf = Path(args.file).read_bytes()
        anchors = [x509.load_pem_x509_certificate(Path(args.ca).read_bytes())] if args.ca else []
    except OSError as error:
        print(f"doorstep: cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    except ValueError:
        print(f"doorstep: {args.ca} is not a PEM certificate", file=sys.stderr)
        return 2
    found = verify_report_pdf(pdf, trust_anchors=anchors)
    print(f"{args.file}: {'VALID' if found.valid else 'INVALID'}")
    print(f"signer: {found.signer or '?'} ({found.signer_username or '?'})")
    print(f"signed at: {found.signed_at or '?'}")
    print(f"trust: {found.trust}")
    print(f"instances covered: {len(found.instances)}")
    for instance in found.instances:
        print(f"  {instance['sop_instance_uid']} sha256={instance['sha256']}")
    for problem in found.problems:
        print(f"problem: {problem}")
    return 0 if found.valid else 1


def cmd_signing_export_ca(settings: Settings, args: argparse.Namespace) -> int:
    """Print the deployment's signing CA certificate (PEM), creating the CA if there is none."""
    from server.reports import authority
    from server.reports.lifetime import authority_directory

    found = authority.load_or_create_authority(
        directory=authority_directory(settings.data_dir), secret=settings.resolved_secret_key()
    )
    sys.stdout.write(found.certificate_pem.decode())
    return 0


def cmd_signing_import_ca(settings: Settings, args: argparse.Namespace) -> int:
    """Use a real CA's certificate and key to issue the specialists' signing certificates."""
    from server.reports import authority
    from server.reports.lifetime import authority_directory

    try:
        certificate = Path(args.cert).read_bytes()
        key = Path(args.key).read_bytes()
    except OSError as error:
        print(f"doorstep: cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\n").encode() if args.key_password_stdin else None
    try:
        authority.import_authority(
            directory=authority_directory(settings.data_dir),
            certificate_pem=certificate,
            key_pem=key,
            key_password=password,
            secret=settings.resolved_secret_key(),
            replace=args.replace,
        )
    except authority.SigningAuthorityError as error:
        print(f"doorstep: {error}", file=sys.stderr)
        return 2
    print("imported; specialists get certificates of this CA when they next sign")
    return 0


def cmd_consult_join(settings: Settings, args: argparse.Namespace) -> int:
    """Join a consult's call as an aiortc peer (test pattern, file or camera)."""
    from server.consults import console, media

    # The console prints the client's progress in words: its log lines would say it twice.
    logging.getLogger("server.consults.client").setLevel(logging.WARNING)

    try:
        source = media.Source.parse(args.source)
    except ValueError as error:
        print(f"doorstep: {error}", file=sys.stderr)
        return 2
    from_stdin = args.token == "-"  # noqa: S105  (not a password: "read from stdin")
    token = sys.stdin.readline().strip() if from_stdin else args.token
    plan = console.Attendance(
        server=args.server,
        token=token,
        consult_id=args.consult_id,
        source=source,
        duration=args.duration,
        auto_admit=args.auto_admit,
        stun=args.stun,
        relay_only=args.relay_only,
        chat=args.chat,
    )
    return asyncio.run(console.attend(plan))


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    """Check configuration and dependencies."""
    from server import doctor

    return doctor.run(settings)


def _dicom_peer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dicom-peer",
        action="append",
        metavar="HOST_OR_CIDR",
        help="an IP address or network (CIDR) the organisation's DICOM devices connect from "
        "(repeatable; host names are refused); without any, only loopback peers are admitted",
    )
    parser.add_argument(
        "--dicom-cert-sha256",
        metavar="HEX",
        help="SHA-256 fingerprint of the DICOM TLS client certificate that admits the "
        "organisation's AE title from any address",
    )


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
    org_add = org.add_parser(
        "add", help="Create an organisation.", description="Create an organisation."
    )
    org_add.add_argument("name")
    org_add.add_argument("--kind", required=True, choices=[k.value for k in OrgKind])
    org_add.add_argument("--ae-title", help="DICOM calling AE title of the organisation's devices")
    _dicom_peer_options(org_add)
    org_add.set_defaults(handler=cmd_org_add)
    org_update = org.add_parser(
        "update",
        help="Change an organisation's AE title, DICOM peers or client certificate.",
        description="Change an organisation's AE title, DICOM peers or pinned client "
        "certificate. --dicom-peer adds to the list; with --clear-dicom-peers the list "
        "becomes exactly the peers given (none: loopback peers only).",
    )
    org_update.add_argument("name")
    org_update.add_argument("--ae-title", help="new DICOM calling AE title")
    _dicom_peer_options(org_update)
    org_update.add_argument(
        "--clear-dicom-peers",
        action="store_true",
        help="empty the list first (then only loopback peers are admitted, or those given)",
    )
    org_update.add_argument(
        "--clear-dicom-cert", action="store_true", help="unpin the DICOM TLS client certificate"
    )
    org_update.set_defaults(handler=cmd_org_update)

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
    password = user_add.add_mutually_exclusive_group()
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    password.add_argument(
        "--no-password",
        action="store_true",
        help="no password: the account signs in only with API tokens (devices, services)",
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
    verify_report = commands.add_parser(
        "verify",
        help="Verify a signed report PDF offline; exit 0 when intact, 1 when not.",
        description="Verify a signed report PDF offline: signer, time, covered instances, "
        "problems. Exit 0 when intact, 1 when anything changed or the signature does not hold.",
    )
    verify_report.add_argument("file", metavar="FILE", help="the report PDF")
    verify_report.add_argument(
        "--ca",
        metavar="CERT",
        help="the deployment's CA certificate (PEM) to trust; without it, the CA embedded in "
        "the file is used, which proves integrity but not who the CA is",
    )
    verify_report.set_defaults(handler=cmd_verify)
    signing_cmd = commands.add_parser(
        "signing", help="The deployment's report-signing CA."
    ).add_subparsers(dest="signing_command", required=True, metavar="COMMAND")
    signing_cmd.add_parser(
        "export-ca", help="Print the signing CA certificate (PEM) for `doorstep verify --ca`."
    ).set_defaults(handler=cmd_signing_export_ca)
    import_ca = signing_cmd.add_parser(
        "import-ca", help="Use a real CA's certificate and key instead of the generated one."
    )
    import_ca.add_argument("--cert", required=True, metavar="PEM", help="the CA certificate")
    import_ca.add_argument("--key", required=True, metavar="PEM", help="the CA private key")
    import_ca.add_argument(
        "--key-password-stdin", action="store_true", help="read the key's password from stdin"
    )
    import_ca.add_argument(
        "--replace", action="store_true", help="replace the CA this deployment already has"
    )
    import_ca.set_defaults(handler=cmd_signing_import_ca)
    consult_cmd = commands.add_parser("consult", help="Video consults.").add_subparsers(
        dest="consult_command", required=True, metavar="COMMAND"
    )
    join = consult_cmd.add_parser(
        "join",
        help="Join a consult's call as an aiortc peer, printing its progress.",
        description="Join a consult's call as an aiortc peer (a kiosk, a test), printing "
        "its progress: the lobby, admission, the peers, video received, chat.",
    )
    join.add_argument("consult_id", type=int, metavar="ID")
    join.add_argument(
        "--server", required=True, metavar="URL", help="e.g. https://doorstep.example.org"
    )
    join.add_argument(
        "--token",
        required=True,
        help="a bearer token (doorstep token create); - reads it from stdin",
    )
    join.add_argument(
        "--source",
        default="pattern",
        help="pattern (a moving test pattern, the default), file:PATH or camera:DEVICE "
        "(a V4L2 device such as /dev/video0)",
    )
    join.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="seconds to stay (default: until Ctrl-C or the call ends)",
    )
    join.add_argument("--auto-admit", action="store_true", help="host: admit everyone who knocks")
    join.add_argument(
        "--stun",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="use the STUN server (default: not when the server is on loopback)",
    )
    join.add_argument("--relay-only", action="store_true", help="connect through TURN only")
    join.add_argument("--chat", default=None, metavar="TEXT", help="send this chat message once in")
    join.set_defaults(handler=cmd_consult_join)
    commands.add_parser("doctor", help="Check configuration and dependencies.").set_defaults(
        handler=cmd_doctor
    )
    return parser


def _setting_problem(error: ValidationError | SettingsError) -> str:
    """One line for settings that do not validate, naming the first offending variable."""
    if isinstance(error, SettingsError):
        return f"invalid settings: {error}"
    first = error.errors(include_url=False)[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    problem = first["msg"].removeprefix("Value error, ")
    if "secret" not in field:
        problem += f"; got {first.get('input')!r}"
    return InvalidSetting(field, problem + more).message


def _cannot_listen(error: serving.CannotListen) -> str:
    """One line for a listener that could not bind: which port, and how to choose another."""
    if error.what == "HTTP":
        choose = "--port or DOORSTEP_PORT"
    else:
        choose = "--dicom-port or DOORSTEP_DICOM_PORT; 0 disables DICOM"
    if error.error.errno == errno.EADDRINUSE:
        return (
            f"port {error.port} on {error.host} is in use (the {error.what} port: stop the "
            f"program that holds it, or choose another with {choose})"
        )
    return (
        f"cannot listen on port {error.port} on {error.host} for {error.what}: "
        f"{error.error.strerror or error.error} (see --host, {choose})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `doorstep` command."""
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {
        k: v for k in ("host", "port", "dicom_port") if (v := getattr(args, k, None)) is not None
    }
    try:
        settings = Settings(**overrides)
    except (ValidationError, SettingsError) as error:
        print(f"doorstep: {_setting_problem(error)}", file=sys.stderr)
        return 2
    logs.configure(level=settings.log_level, json_lines=settings.log_json)
    try:
        code: int = args.handler(settings, args)
    except (DomainError, InvalidSetting) as error:
        print(f"doorstep: {error.message}", file=sys.stderr)
        return 2
    except serving.CannotListen as error:
        print(f"doorstep: {_cannot_listen(error)}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
