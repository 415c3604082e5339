"""multipart/related bodies (RFC 2387) as PS3.18 uses them: read part by part, written streaming."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from aiohttp.helpers import parse_mimetype

from server.dicomweb.media import DICOM
from server.errors import MalformedInput, PayloadTooLarge, UnsupportedMediaType

READ_CHUNK = 256 * 1024


def stow_reader(request: web.Request, *, max_total_bytes: int) -> MultipartReader:
    """A reader for a STOW-RS body, after checking its media type, boundary and declared size."""
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
    if not mimetype.parameters.get("boundary"):
        raise MalformedInput("The multipart/related Content-Type has no boundary parameter.")
    try:
        return MultipartReader(request.headers, request.content)
    except ValueError as error:
        raise MalformedInput(f"Unusable multipart boundary: {error}.") from None


async def dicom_parts(
    reader: MultipartReader, *, max_part_bytes: int, max_total_bytes: int
) -> AsyncIterator[bytes]:
    """Each application/dicom part in turn, never more than one held in memory by this reader."""
    total = 0
    while True:
        try:
            part = await reader.next()
        except ValueError as error:
            raise MalformedInput(f"The multipart body is malformed: {error}.") from None
        if part is None:
            return
        if not isinstance(part, BodyPartReader):
            raise UnsupportedMediaType("Nested multipart parts are not accepted.")
        part_type = parse_mimetype(part.headers.get(hdrs.CONTENT_TYPE, DICOM))
        if f"{part_type.type}/{part_type.subtype}" != DICOM:
            raise UnsupportedMediaType(
                f"Every part must be {DICOM}; one is {part.headers[hdrs.CONTENT_TYPE]!r}."
            )
        data = bytearray()
        while True:
            try:
                chunk = await part.read_chunk(READ_CHUNK)
            except ValueError as error:
                raise MalformedInput(f"The multipart body is malformed: {error}.") from None
            if not chunk:
                break
            total += len(chunk)
            if total > max_total_bytes:
                raise PayloadTooLarge(
                    f"The request body is larger than the limit of {max_total_bytes} bytes."
                )
            data += chunk
            if len(data) > max_part_bytes:
                raise PayloadTooLarge(
                    f"An instance is larger than the limit of {max_part_bytes} bytes."
                )
        yield bytes(data)


class MultipartStream:
    """A streamed multipart/related response whose parts share one media type."""

    def __init__(self, request: web.Request, part_type: str) -> None:
        self.request = request
        self.boundary = secrets.token_hex(16)
        self.response = web.StreamResponse(
            headers={
                hdrs.CONTENT_TYPE: (
                    f'multipart/related; type="{part_type}"; boundary={self.boundary}'
                )
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
