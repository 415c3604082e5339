"""Declared access rules of route handlers: deny by default, one mechanism for every route."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from server.identity import Role

H = TypeVar("H", bound=Callable[..., Any])
_ATTRIBUTE = "__doorstep_access__"


@dataclass(frozen=True, slots=True)
class Access:
    """Who may call a handler: anyone (public), any signed-in user, or some roles.

    `guest` lets a request through that carries a guest credential (a consult's guest
    cookie, or `Authorization: Guest <credential>`) and no signed-in user: the handler
    itself checks the credential. Only GET requests pass that way.
    """

    public: bool = False
    roles: frozenset[Role] = frozenset()
    page: bool = False
    guest: bool = False

    def allows(self, role: Role) -> bool:
        """True when a signed-in user of this role may call the handler."""
        return not self.roles or role in self.roles


SIGNED_IN = Access()


def allow(
    *roles: Role, public: bool = False, page: bool = False, guest: bool = False
) -> Callable[[H], H]:
    """Declare who may call a handler; handlers without a declaration need a signed-in user.

    guest=True also lets in a consult guest (no account), whom the handler must check.
    """

    def mark(handler: H) -> H:
        access = Access(public=public, roles=frozenset(roles), page=page, guest=guest)
        setattr(handler, _ATTRIBUTE, access)
        return handler

    return mark


def access_of(handler: Callable[..., Any]) -> Access:
    """The declared access of a handler (signed-in users only when undeclared)."""
    found = getattr(handler, _ATTRIBUTE, None)
    return found if isinstance(found, Access) else SIGNED_IN
