"""multipart/related bodies (RFC 2387) as PS3.18 uses them: read part by part, written streaming."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable

from aiohttp import StreamReader, hdrs, web
from aiohttp.helpers import parse_mimetype

from server.archive.storage import Spool, SpooledInstance
from server.dicomweb.media import DICOM
from server.errors import DomainError, MalformedInput, PayloadTooLarge, UnsupportedMediaType

SPOOL_ABOVE = 8 * 1024 * 1024
"""Bytes of one part held in memory before the rest of it goes to a spool file."""
MAX_HEADER_BYTES = 16 * 1024
"""Longest header block of one part; DICOM parts carry one or two short headers."""
MAX_PREAMBLE_BYTES = 64 * 1024
"""Bytes accepted before the first boundary (RFC 2046 allows a preamble; clients send none)."""
_BCHARS = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ")


def stow_boundary(request: web.Request, *, max_total_bytes: int) -> bytes:
    """The boundary of a STOW-RS body, after checking its media type and declared size."""
    declared = request.content_length
    if declared is not None and declared > max_total_bytes:
        raise PayloadTooLarge(
            f"The request body is {declared} bytes; the limit is {max_total_bytes} bytes."
        )
    content_type = request.headers.get(hdrs.CONTENT_TYPE, "")
    mimetype = parse_mimetype(content_type)
    if (mimetype.type, mimetype.subtype) != ("multipart", "related"):
        raise UnsupportedMediaType(
            f'Send instances as multipart/related; type="{DICOM}", not {content_type or "nothing"}.'
        )
    part_type = mimetype.parameters.get("type", DICOM).lower()
    if part_type != DICOM:
        raise UnsupportedMediaType(
            f"This archive stores {DICOM} parts; the request declares type={part_type!r}."
        )
    boundary = mimetype.parameters.get("boundary", "").encode("latin-1", "replace")
    if not boundary:
        raise MalformedInput("The multipart/related Content-Type has no boundary parameter.")
    # RFC 2046 5.1.1: 1 to 70 characters from bchars, not ending with a space.
    if len(boundary) > 70 or not set(boundary) <= _BCHARS or boundary.endswith(b" "):
        raise MalformedInput("The multipart boundary is not a valid RFC 2046 boundary.")
    return boundary


class _Body:
    """The request body as a buffer that is filled from the stream and consumed from the front."""

    def __init__(self, stream: StreamReader, max_total_bytes: int) -> None:
        self.stream = stream
        self.max_total_bytes = max_total_bytes
        self.buffer = bytearray()
        self.received = 0

    async def fill(self) -> bool:
        """Append what the stream has next; False at its end."""
        chunk = await self.stream.readany()
        if not chunk:
            return False
        self.received += len(chunk)
        if self.received > self.max_total_bytes:
            raise PayloadTooLarge(
                f"The request body is larger than the limit of {self.max_total_bytes} bytes."
            )
        self.buffer += chunk
        return True

    async def find(self, needle: bytes, start: int, limit: int, too_long: DomainError) -> int:
        """Offset of needle at or after start, reading on; too_long past limit bytes from start."""
        scan = start  # where needle may still begin in what has been read
        while True:
            found = self.buffer.find(needle, scan)
            if found >= 0 and found - start <= limit:
                return found
            if found >= 0 or len(self.buffer) - start > limit + len(needle):
                raise too_long
            scan = max(start, len(self.buffer) - len(needle) + 1)
            if not await self.fill():
                raise MalformedInput(
                    "The multipart body ends before its closing boundary (truncated, or "
                    "the boundary in Content-Type is not the one in the body)."
                )

    async def part(
        self,
        delimiter: bytes,
        too_large: DomainError,
        *,
        max_bytes: int,
        spool_above: int,
        open_spool: Callable[[], Spool] | None,
    ) -> bytes | SpooledInstance:
        """The bytes up to the next delimiter (consumed with it); past spool_above, in a file.

        A part larger than spool_above is written to a spool file. While no delimiter is in
        sight and the buffer holds more than spool_above bytes, all but the last few (which
        may begin the delimiter) move to the file, so a part of any size holds at most about
        spool_above bytes (plus what one read brings) in memory.
        """
        spool: Spool | None = None
        spooled, scan = 0, 0
        keep = len(delimiter) - 1
        try:
            while True:
                found = self.buffer.find(delimiter, scan)
                if found >= 0:
                    if spooled + found > max_bytes:
                        raise too_large
                    data = bytes(self.buffer[:found])
                    del self.buffer[: found + len(delimiter)]
                    if spool is None and (open_spool is None or spooled + found <= spool_above):
                        return data
                    if spool is None:
                        assert open_spool is not None
                        spool = await asyncio.to_thread(open_spool)
                    await asyncio.to_thread(spool.write, data)
                    return spool.close()
                if spooled + len(self.buffer) > max_bytes + len(delimiter):
                    raise too_large
                if open_spool is not None and len(self.buffer) > spool_above + keep:
                    if spool is None:
                        spool = await asyncio.to_thread(open_spool)
                    cut = len(self.buffer) - keep
                    chunk = bytes(self.buffer[:cut])
                    del self.buffer[:cut]
                    await asyncio.to_thread(spool.write, chunk)
                    spooled += cut
                scan = max(0, len(self.buffer) - keep)
                if not await self.fill():
                    raise MalformedInput(
                        "The multipart body ends before its closing boundary (truncated, or "
                        "the boundary in Content-Type is not the one in the body)."
                    )
        except BaseException:
            if spool is not None:
                await asyncio.to_thread(spool.abandon)
            raise

    async def peek(self, size: int) -> bytes:
        """The next size bytes (fewer at the end of the body), left in the buffer."""
        while len(self.buffer) < size and await self.fill():
            pass
        return bytes(self.buffer[:size])


async def dicom_parts(
    stream: StreamReader,
    boundary: bytes,
    *,
    max_part_bytes: int,
    max_total_bytes: int,
    max_parts: int,
    spool_above: int = SPOOL_ABOVE,
    open_spool: Callable[[], Spool] | None = None,
) -> AsyncIterator[bytes | SpooledInstance]:
    """Each application/dicom part in turn (RFC 2046 5.1), never more than one held in memory.

    The body is scanned once for the delimiter. With open_spool, a part larger than
    spool_above is written to a spool file as it arrives and yielded as that file, so
    memory per request stays near spool_above whatever the instances' size. More than
    max_parts parts refuse the whole request (413).
    """
    body = _Body(stream, max_total_bytes)
    dash = b"--" + boundary
    delimiter = b"\r\n" + dash
    first = await body.find(dash, 0, MAX_PREAMBLE_BYTES, _no_boundary())
    while first > 0 and body.buffer[first - 2 : first] != b"\r\n":
        first = await body.find(dash, first + 1, MAX_PREAMBLE_BYTES, _no_boundary())
    del body.buffer[: first + len(dash)]
    parts = 0
    while True:
        if await body.peek(2) == b"--":
            return  # close delimiter; the epilogue is ignored
        parts += 1
        if parts > max_parts:
            raise PayloadTooLarge(
                f"The request holds more than {max_parts} instances; "
                f"send at most {max_parts} per request."
            )
        end = await body.find(b"\r\n", 0, 1024, MalformedInput("Malformed multipart delimiter."))
        if body.buffer[:end].strip(b" \t"):
            raise MalformedInput("Unexpected bytes after a multipart boundary.")
        headers_end = await body.find(
            b"\r\n\r\n", end, MAX_HEADER_BYTES, MalformedInput("A part's headers are too long.")
        )
        _check_part_type(bytes(body.buffer[end + 2 : headers_end]))
        del body.buffer[: headers_end + 4]
        too_large = PayloadTooLarge(
            f"An instance is larger than the limit of {max_part_bytes} bytes."
        )
        yield await body.part(
            delimiter,
            too_large,
            max_bytes=max_part_bytes,
            spool_above=spool_above,
            open_spool=open_spool,
        )


def _no_boundary() -> MalformedInput:
    return MalformedInput(
        "The multipart body does not start with the boundary given in Content-Type."
    )


def _check_part_type(block: bytes) -> None:
    """Refuse a part that is not application/dicom (no Content-Type means application/dicom)."""
    content_type = DICOM
    for line in block.decode("latin-1").split("\r\n"):
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise MalformedInput("A multipart part has a header line without a colon.")
        if name.strip().lower() == "content-type":
            content_type = value.strip()
    mimetype = parse_mimetype(content_type)
    if mimetype.type == "multipart":
        raise UnsupportedMediaType("Nested multipart parts are not accepted.")
    suffix = f"+{mimetype.suffix}" if mimetype.suffix else ""
    if f"{mimetype.type}/{mimetype.subtype}{suffix}" != DICOM:
        raise UnsupportedMediaType(f"Every part must be {DICOM}; one is {content_type[:100]!r}.")


class MultipartStream:
    """A streamed multipart/related response whose parts share one media type."""

    def __init__(
        self,
        request: web.Request,
        part_type: str,
        *,
        boundary: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """A random boundary unless one is given (a strong ETag needs a fixed one)."""
        self.request = request
        self.boundary = boundary or secrets.token_hex(16)
        self.response = web.StreamResponse(
            headers={
                **(headers or {}),
                hdrs.CONTENT_TYPE: (
                    f'multipart/related; type="{part_type}"; boundary={self.boundary}'
                ),
            }
        )

    async def start(self) -> None:
        """Send the status and headers."""
        await self.response.prepare(self.request)

    async def part(self, content_type: str, chunks: AsyncIterator[bytes] | bytes) -> None:
        """Send one part; its body is given whole or as chunks."""
        head = f"--{self.boundary}\r\nContent-Type: {content_type}\r\n\r\n"
        await self.response.write(head.encode())
        if isinstance(chunks, bytes):
            await self.response.write(chunks)
        else:
            async for chunk in chunks:
                await self.response.write(chunk)
        await self.response.write(b"\r\n")

    async def finish(self) -> web.StreamResponse:
        """Send the closing delimiter."""
        await self.response.write(f"--{self.boundary}--\r\n".encode())
        await self.response.write_eof()
        return self.response
