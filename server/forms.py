"""Reading submitted HTML forms and query-string ids, for every feature's pages."""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from server.errors import MalformedInput


class Form:
    """The text fields of a submitted form, trimmed and bounded."""

    def __init__(self, fields: MultiDict[str]) -> None:
        self._fields = fields

    def text(self, name: str, *, limit: int = 256, strip: bool = True) -> str:
        """One field's value ('' when absent), cut to a sane length."""
        value = self._fields.get(name, "")
        return (value.strip() if strip else value)[:limit]

    def all(self, name: str, *, limit: int = 64) -> list[str]:
        """Every value of a repeated field (checkboxes, multi-selects)."""
        return [v.strip()[:limit] for v in self._fields.getall(name, []) if v.strip()]


def query_id(request: web.Request, name: str) -> int | None:
    """A numeric id from the query string, None when absent or not a number."""
    value = request.query.get(name, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 12 else None


async def posted(
    request: web.Request,
) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """request.post(), with a body that cannot be decoded (not UTF-8, bad multipart) a 400."""
    try:
        return await request.post()
    except UnicodeDecodeError:
        reason = f"it is not {request.charset or 'UTF-8'} text"
    except LookupError:
        reason = "it names an unknown charset"
    except ValueError as error:
        reason = str(error)
    raise MalformedInput(f"The submitted form cannot be read: {reason}.")


async def read_form(request: web.Request) -> Form:
    """The submitted form (file parts are ignored)."""
    form = await posted(request)
    return Form(MultiDict((k, v) for k, v in form.items() if isinstance(v, str)))
