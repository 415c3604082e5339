"""Request and response bodies of the consults API (the contract of the consults issue)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from server.schemas import Out, Schema

StudyUID = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9.]+$")]


class DutyIn(Schema):
    """Go on or off duty."""

    on_duty: bool


class DutyOut(Out):
    """Whether you are on duty, for which specialties."""

    on_duty: bool
    specialties: list[str]


class ConsultIn(Schema):
    """A GP asks for a consult: a specialty (its on-duty specialists) or a named specialist."""

    patient_id: int = Field(ge=1)
    specialty: str | None = Field(default=None, min_length=1, max_length=64)
    specialist: str | None = Field(
        default=None, min_length=1, max_length=64, description="A specialist's username."
    )
    reason: str = Field(max_length=2000)
    study_uids: list[StudyUID] = Field(
        default_factory=list,
        max_length=20,
        description="Studies of your clinic to discuss.",
    )
    scheduled_at: AwareDatetime | None = Field(
        default=None, description="When the call is to be held (default: now)."
    )


NoteKindIn = Literal["advice", "prescription", "referral_up", "referral_down", "note"]


class NoteIn(Schema):
    """A note on a consult."""

    text: str = Field(min_length=1, max_length=10_000)
    kind: NoteKindIn = Field(
        default="note",
        description="An addition to the contract: advice, prescription (a suggestion for the "
        "GP), referral_up (to the hospital), referral_down (back to the clinic) or note.",
    )


class NoteOut(Out):
    """One note on a consult."""

    id: int
    author: str
    text: str
    created_at: datetime
    kind: str = Field(
        description="chat (a message of the call), advice, prescription, "
        "referral_up, referral_down or note"
    )


class ConsultOut(Out):
    """A consult: where it stands, who it is offered to now (or who took it), its notes."""

    id: int
    status: str = Field(description="requested, accepted, live, ended, declined or expired")
    patient_id: int
    patient_name: str
    clinic: str
    requested_by: str
    specialty: str | None
    specialist: str | None = Field(
        description="The specialist who accepted, or the one it is offered to now (or null)."
    )
    reason: str
    walk_in: bool = Field(
        default=False,
        description='A kiosk\'s "see an expert now": the person waits at the kiosk (an '
        "addition to the contract).",
    )
    study_uids: list[str]
    scheduled_at: datetime | None
    created_at: datetime
    offered_until: datetime | None = Field(description="When the current offer lapses.")
    accepted_at: datetime | None
    ended_at: datetime | None
    notes: list[NoteOut]


class IceServerOut(Out):
    """One RTCIceServer."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class IceOut(Out):
    """The ICE servers of a call; the TURN credentials work until expires_at."""

    ice_servers: list[IceServerOut]
    expires_at: datetime
    ice_transport_policy: Literal["all", "relay"] = "all"
    """An addition to the contract: the RTCPeerConnection's iceTransportPolicy the deployment
    asks for (DOORSTEP_CONSULT_ICE_TRANSPORT_POLICY)."""


class GuestIn(Schema):
    """Invite a guest (the patient at home, a relative, an interpreter) into the call."""

    label: str | None = Field(
        default=None,
        max_length=100,
        description='Who the guest is, shown in the call ("Patient at home"); plain text.',
    )
    expires_in_minutes: int | None = Field(
        default=None,
        ge=1,
        description="How long the link (and the guest's access) lasts; the server's default "
        "(DOORSTEP_CONSULT_GUEST_MINUTES) unless told, at most DOORSTEP_CONSULT_GUEST_MAX_MINUTES.",
    )


class GuestOut(Out):
    """A guest link of a consult (its token is never shown again after the invitation)."""

    id: int
    label: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None = Field(description="When the guest opened the link.")
    revoked_at: datetime | None
    state: str = Field(description="open, redeemed, expired, revoked or ended")


class InvitationOut(GuestOut):
    """A new guest link: hand `url` to the guest; it opens the call once, until expires_at."""

    url: str


class CheckOfferIn(Schema):
    """The browser's offer for a pre-call network check (every candidate in it, or trickled
    none: the echo peer answers with its own)."""

    type: Literal["offer"]
    sdp: str = Field(min_length=1, max_length=64 * 1024)


class CheckAnswerOut(Out):
    """The echo peer's answer: it sends your tracks back and echoes data channel messages."""

    type: Literal["answer"]
    sdp: str


class RecordingConsentIn(Schema):
    """A doctor consents to recording the call (or withdraws: false)."""

    consent: bool
    patient_consent: bool | None = Field(
        default=None,
        description="The GP records the patient's consent with theirs (left out: true); "
        "false is refused.",
    )


class ConsentOut(Out):
    """One doctor's consent."""

    by: str
    at: datetime


class RecordingOut(Out):
    """Where a consult's recording stands."""

    consult_id: int
    gp_consent: ConsentOut | None
    patient_consent: bool
    specialist_consent: ConsentOut | None
    recording: bool = Field(description="True while the recorder records the call.")
    started_at: datetime | None
    stopped_at: datetime | None
    stop_reason: str | None = Field(description="withdrawn, ended, empty, shutdown or failed")
    duration_seconds: float | None
    tracks: list[str]
    available: bool = Field(
        description="True once the consult ended and a file was recorded: GET …/recording."
    )
