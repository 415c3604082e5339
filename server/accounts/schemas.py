"""Request and response bodies of the accounts API."""

from __future__ import annotations

from pydantic import Field

from server.identity import OrgKind, Role
from server.schemas import Out, Schema


class LoginIn(Schema):
    """Username and password."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class OrganisationOut(Out):
    """An organisation as its members see it."""

    id: int
    name: str
    kind: OrgKind


class MeOut(Out):
    """The signed-in user."""

    id: int
    username: str
    display_name: str
    role: Role
    specialties: list[str]
    organisation: OrganisationOut


class LoginOut(Out):
    """A started session: who signed in and the token to send in X-CSRF-Token."""

    user: MeOut
    csrf_token: str
