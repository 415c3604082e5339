"""Settings from the environment (prefix DOORSTEP_), shared by the server and the CLI."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class InvalidSetting(Exception):
    """A setting whose value cannot be used; the message names the environment variable."""

    def __init__(self, field: str, problem: str) -> None:
        self.variable = f"DOORSTEP_{field.upper()}"
        self.message = f"invalid setting {self.variable}: {problem}"
        super().__init__(self.message)


class Settings(BaseSettings):
    """Every knob of a Doorstep process; one instance per process."""

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", extra="ignore")

    data_dir: Path = Path("./doorstep-data")
    database_url: str = ""
    secret_key: SecretStr = SecretStr("")
    secret_key_file: Path | None = None
    """A file holding the secret key (readable by the service only); outside the data dir."""
    public_url: str = ""

    host: str = "127.0.0.1"
    port: int = 8080
    dicom_port: int = 11112
    ae_title: str = "DOORSTEP"
    dimse_unknown_ae: Literal["reject", "accept"] = "reject"
    """Calling AE titles no organisation claims: reject the association, or accept it for
    C-ECHO only (C-STORE and C-FIND are then refused as not authorised)."""
    dimse_max_find_results: int = 1000
    dicom_tls_cert: Path | None = None
    """PEM certificate chain of the DIMSE listener; with dicom_tls_key it speaks DICOM TLS."""
    dicom_tls_key: Path | None = None
    dicom_tls_ca: Path | None = None
    """PEM CA certificates that DIMSE client certificates must chain to; when set, every
    peer must present one (PS3.15 B.1), and a certificate pinned to an organisation admits
    that organisation's AE title from any address."""

    tls_cert: Path | None = None
    tls_key: Path | None = None

    turn_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated (``turn:a:3478,turns:b:5349``) or a JSON list."""
    turn_secret: SecretStr = SecretStr("")

    max_body_bytes: int = 1024 * 1024
    max_instance_bytes: int = 512 * 1024 * 1024
    max_stow_bytes: int = 4 * 1024 * 1024 * 1024
    max_stow_parts: int = 2000
    max_uploads_per_user: int = Field(default=3, ge=1)
    """Uploads (STOW-RS requests, zips, photos) one user may have under way per process."""
    """Instances one STOW-RS request may carry; more refuse the request (413)."""
    max_inflated_bytes: int = 256 * 1024 * 1024
    rendered_cache_memory_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    """Rendered images and thumbnails kept in this process's memory (LRU); 0 keeps none."""
    rendered_cache_disk_bytes: int = Field(default=1024 * 1024 * 1024, ge=0)
    """Rendered images and thumbnails kept under <data dir>/cache/rendered (least recently
    used evicted first; survives restarts); 0 keeps none on disk."""
    archive_conflict: Literal["reject", "replace"] = "reject"
    session_idle_minutes: int = 15
    session_max_hours: int = 12
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(default_factory=list)
    """Reverse proxies (addresses or CIDRs) whose X-Forwarded-For names the real client."""
    login_max_failures: int = 5
    login_failure_window_minutes: int = 15
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0)
    """How long a SQLite writer waits for the lock before the request gets a 503."""
    auto_upgrade: bool = True
    audit_checkpoint_minutes: int = Field(default=60, ge=1)
    """How often the server logs a signed audit checkpoint for an external log store."""
    reading_sla_stat_minutes: int = Field(default=30, ge=1)
    reading_sla_urgent_minutes: int = Field(default=240, ge=1)
    reading_sla_routine_minutes: int = Field(default=1440, ge=1)
    """How long a reading may take, by priority, before it is overdue and escalated."""
    reading_lease_minutes: int = Field(default=15, ge=1)
    """How long a claim holds a request without activity (viewer open, draft saved)."""
    reading_watch_seconds: float = Field(default=30.0, gt=0)
    """How often the SLA watch looks for overdue requests and lapsed claims."""
    consult_offer_seconds: float = Field(default=60.0, gt=0)
    """How long a consult request is offered to one specialist before it goes to the next."""
    consult_watch_seconds: float = Field(default=5.0, gt=0)
    """How often the offer watch moves lapsed consult offers on."""
    consult_ice_transport_policy: Literal["all", "relay"] = "all"
    """``relay`` makes every call go through TURN (no host or server-reflexive candidates:
    the clinic's and the specialist's addresses stay hidden from each other)."""
    consult_ice_ttl_seconds: int = Field(default=3600, ge=60)
    """How long the TURN REST credentials of GET /api/v1/consults/{id}/ice stay valid."""
    consult_signal_message_bytes: int = Field(default=64 * 1024, ge=1024)
    """Largest signaling message (UTF-8 bytes); a bigger one closes its socket with 1009."""
    consult_signal_rate: float = Field(default=50.0, gt=0)
    """Signaling messages one socket may send per second, on average (a token bucket)."""
    consult_signal_burst: int = Field(default=100, ge=1)
    """Signaling messages one socket may send at once before the rate applies."""
    consult_room_max_peers: int = Field(default=6, ge=2)
    """Peers one consult's call holds at most (in the room and in the lobby together)."""
    consult_auto_admit: bool = False
    """Admit the requesting clinic's GPs into the call without the specialist's say."""
    consult_presence_seconds: float = Field(default=10.0, gt=0)
    """How often each server process re-announces the peers of its calls on the event bus;
    a process silent for three intervals is taken to be gone, with its peers."""
    consult_chunk_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long a signaling message split over several bus events may take to arrive whole."""
    consult_guest_minutes: int = Field(default=120, ge=1)
    """How long a consult's guest link (and the guest access it opens) lasts unless told."""
    consult_guest_max_minutes: int = Field(default=1440, ge=1)
    """The longest a doctor may ask a guest link to last (expires_in_minutes)."""
    kiosk_enrolment_minutes: int = Field(default=15, ge=1, le=1440)
    """How long a kiosk enrolment code works (it works once)."""
    consult_check_max_peers: int = Field(default=8, ge=1)
    """Pre-call network checks (server-side echo peers) one server process runs at once."""
    consult_check_seconds: float = Field(default=60.0, gt=0)
    """How long one pre-call network check's echo peer lives before it is closed."""
    consult_recorder_idle_seconds: float = Field(default=30.0, gt=0)
    """How long the call recorder waits for the doctors to be in the room before it stops."""
    kiosk_idle_seconds: int = Field(default=90, ge=10)
    """How long a kiosk screen waits without a touch before it asks "Are you still there?"
    (then counts down and resets, closing the visit)."""
    kiosk_take_home_hours: int = Field(default=24, ge=1, le=168)
    """How long a visit's take-home summary (its QR code) can be opened."""
    time_zone: str = "UTC"
    """The deployment's time zone (IANA name, e.g. Asia/Shanghai): how pages show roster
    shifts and follow-up times (stored in UTC)."""
    kiosk_follow_up_minutes: int = Field(default=15, ge=5, le=240)
    """The length of one follow-up slot booked at a kiosk (roster shifts are cut into them)."""
    kiosk_reminder_seconds: float = Field(default=30.0, gt=0)
    """How often the follow-up reminder watch looks for follow-ups starting soon."""
    webhook_allow_loopback: bool = False
    """Allow http:// report webhooks on 127.0.0.1 and localhost (tests, a local relay)."""
    webhook_retry_seconds: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [30.0, 120.0, 600.0, 3600.0, 21600.0]
    )
    """The waits before each retry of a failed webhook delivery (comma-separated); then failed."""
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("turn_urls", "trusted_proxies", "webhook_retry_seconds", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """A list from the environment: comma-separated, or JSON when it starts with '['."""
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            try:
                return json.loads(value)
            except ValueError as error:
                raise ValueError(f"not a JSON list ({error})") from None
        return [item.strip() for item in value.split(",") if item.strip()]

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _defaults_from_data_dir(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'doorstep.db'}"
        return self

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded default database."""
        return self.database_url.startswith("sqlite")

    @property
    def tls_enabled(self) -> bool:
        """True when the HTTP listener serves HTTPS."""
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def dicom_tls_enabled(self) -> bool:
        """True when the DIMSE listener speaks DICOM TLS."""
        return self.dicom_tls_cert is not None and self.dicom_tls_key is not None

    @property
    def secret_key_source(self) -> str:
        """Where the secret key comes from: "environment", "file" or "data directory"."""
        if self.secret_key.get_secret_value():
            return "environment"
        return "file" if self.secret_key_file is not None else "data directory"

    def resolved_secret_key(self) -> bytes:
        """The secret key: configured, read from its file, or created once in the data dir."""
        if self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value().encode()
        if self.secret_key_file is not None:
            try:
                key = self.secret_key_file.read_text().strip()
            except (OSError, UnicodeDecodeError) as error:
                reason = getattr(error, "strerror", None) or error
                raise InvalidSetting(
                    "secret_key_file", f"{self.secret_key_file}: cannot read it ({reason})"
                ) from None
            if not key:
                raise InvalidSetting("secret_key_file", f"{self.secret_key_file} is empty")
            return key.encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()
