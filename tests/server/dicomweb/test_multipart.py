"""The STOW-RS multipart/related reader (RFC 2046 5.1) on its own, fed in chunks of any size."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

import pytest
from aiohttp import StreamReader
from aiohttp.base_protocol import BaseProtocol
from hypothesis import given, settings
from hypothesis import strategies as st

from server.archive.storage import Spool, SpooledInstance
from server.dicomweb.multipart import dicom_parts
from server.errors import MalformedInput, PayloadTooLarge, UnsupportedMediaType

BOUNDARY = b"b0undary"
HEAD = b"Content-Type: application/dicom\r\n\r\n"


def fed(data: bytes, chunk: int) -> StreamReader:
    """A stream that receives data chunk by chunk while the reader reads (as from a socket)."""
    protocol = BaseProtocol(asyncio.get_running_loop())
    protocol.connection_made(asyncio.Transport())  # "connected": a read waits for data
    stream = StreamReader(protocol, 2**30)

    async def feed() -> None:
        for start in range(0, len(data), chunk):
            stream.feed_data(data[start : start + chunk])
            await asyncio.sleep(0)
        stream.feed_eof()

    FEEDERS.add(task := asyncio.get_running_loop().create_task(feed()))
    task.add_done_callback(FEEDERS.discard)
    return stream


FEEDERS: set[asyncio.Task[None]] = set()


def body(parts: list[bytes], *, head: bytes = HEAD, preamble: bytes = b"") -> bytes:
    out = preamble + b"".join(b"--" + BOUNDARY + b"\r\n" + head + p + b"\r\n" for p in parts)
    return out + b"--" + BOUNDARY + b"--\r\nepilogue"


async def read(
    data: bytes,
    *,
    chunk: int = 7,
    max_part: int = 10_000,
    max_total: int = 100_000,
    max_parts: int = 100,
):
    stream = fed(data, chunk)
    return [
        part
        async for part in dicom_parts(
            stream,
            BOUNDARY,
            max_part_bytes=max_part,
            max_total_bytes=max_total,
            max_parts=max_parts,
        )
    ]


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 100_000])
async def test_parts_whatever_the_chunking(chunk: int) -> None:
    parts = [b"first", b"", b"\r\n--b0undar", b"--" + BOUNDARY + b" not after CRLF", b"x" * 5000]
    assert await read(body(parts), chunk=chunk) == parts
    assert await read(body([b"m" * 10_000]), chunk=chunk) == [b"m" * 10_000]  # exactly the limit


async def test_preamble_padding_and_missing_headers() -> None:
    data = b"preamble\r\n--" + BOUNDARY + b"  \t\r\n\r\nbare\r\n--" + BOUNDARY + b"--"
    assert await read(data) == [b"bare"]
    assert await read(body([b"a"], head=b"content-type: Application/DICOM\r\nX: y\r\n\r\n")) == [
        b"a"
    ]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (body([b"a"]).replace(BOUNDARY, b"other"), MalformedInput),  # wrong boundary
        (body([b"a"])[:-20], MalformedInput),  # no close delimiter
        (b"--" + BOUNDARY + b"\r\n" + HEAD + b"cut", MalformedInput),  # truncated part
        (b"--" + BOUNDARY + b"junk\r\n" + HEAD + b"a\r\n--" + BOUNDARY + b"--", MalformedInput),
        (body([b"a"], head=b"Content-Type application/dicom\r\n\r\n"), MalformedInput),
        (body([b"a"], head=b"X: " + b"y" * 20_000 + b"\r\n\r\n"), MalformedInput),
        (body([b"a"], head=b"Content-Type: application/dicom+json\r\n\r\n"), UnsupportedMediaType),
        (body([b"a"], head=b"Content-Type: multipart/related\r\n\r\n"), UnsupportedMediaType),
        (b"x" * 70_000, MalformedInput),  # no boundary within the preamble limit
        (body([b"a" * 10_001]), PayloadTooLarge),  # one part over max_part
        (body([b"a" * 10_000, b"b" * 10_001]), PayloadTooLarge),  # a later one
        (body([b"a" * 9_000] * 12), PayloadTooLarge),  # the body over max_total
    ],
)
async def test_bad_bodies_raise_clear_errors(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        await read(data, chunk=4096)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.binary(max_size=300), max_size=6),
    chunk=st.integers(min_value=1, max_value=400),
)
def test_any_parts_round_trip(parts: list[bytes], chunk: int) -> None:
    # A part may hold anything but the delimiter itself (the sender picks a boundary for that).
    delimiter = b"\r\n--" + BOUNDARY
    for index, part in enumerate(parts):
        while delimiter in part:
            part = part.replace(delimiter, b"")
        parts[index] = part
    assert asyncio.run(read(body(parts), chunk=chunk)) == parts


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), chunk=st.integers(min_value=1, max_value=200))
def test_arbitrary_bytes_never_raise_anything_else(data: bytes, chunk: int) -> None:
    with contextlib.suppress(MalformedInput, PayloadTooLarge, UnsupportedMediaType):
        asyncio.run(read(b"--" + BOUNDARY + data, chunk=chunk))


async def test_more_parts_than_the_limit_refuse_the_request() -> None:
    assert await read(body([b"p"] * 3), max_parts=3) == [b"p"] * 3
    with pytest.raises(PayloadTooLarge, match="more than 3 instances; send at most 3"):
        await read(body([b"p"] * 4), max_parts=3)


class Spools:
    """Spool files in a directory, as the blob storage's staging area makes them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def open(self) -> Spool:
        self.count += 1
        return Spool(self.root / f"{self.count:032x}", f"{self.count:032x}")

    def contents(self, items: list[bytes | SpooledInstance]) -> list[bytes]:
        return [i if isinstance(i, bytes) else (self.root / i.token).read_bytes() for i in items]


async def spooled_read(data: bytes, spools: Spools, *, chunk: int, spool_above: int = 16):
    stream = fed(data, chunk)
    return [
        part
        async for part in dicom_parts(
            stream,
            BOUNDARY,
            max_part_bytes=10_000,
            max_total_bytes=100_000,
            max_parts=100,
            spool_above=spool_above,
            open_spool=spools.open,
        )
    ]


@pytest.mark.parametrize("chunk", [1, 5, 64, 100_000])
async def test_large_parts_go_to_spool_files_with_exactly_their_bytes(
    chunk: int, tmp_path: Path
) -> None:
    spools = Spools(tmp_path)
    parts = [b"small", b"L" * 5000 + b"\r\n-", b"", bytes(range(256)) * 39]
    items = await spooled_read(body(parts), spools, chunk=chunk)
    assert [type(i) for i in items] == [bytes, SpooledInstance, bytes, SpooledInstance]
    assert spools.contents(items) == parts
    assert [i.size for i in items if isinstance(i, SpooledInstance)] == [5003, 9984]


@pytest.mark.parametrize(
    "data",
    [
        body([b"a" * 10_001]),  # over max_part while spooling
        (b"--" + BOUNDARY + b"\r\n" + HEAD + b"x" * 5000),  # truncated while spooling
    ],
)
async def test_a_part_refused_while_spooling_leaves_no_file(data: bytes, tmp_path: Path) -> None:
    spools = Spools(tmp_path)
    with pytest.raises((PayloadTooLarge, MalformedInput)):
        await spooled_read(data, spools, chunk=512)
    assert not any(await asyncio.to_thread(lambda: list(tmp_path.iterdir())))


@settings(max_examples=100, deadline=None)
@given(
    parts=st.lists(st.binary(max_size=300), max_size=5),
    chunk=st.integers(min_value=1, max_value=400),
    spool_above=st.integers(min_value=0, max_value=64),
)
def test_any_parts_round_trip_through_spools(
    parts: list[bytes], chunk: int, spool_above: int
) -> None:
    delimiter = b"\r\n--" + BOUNDARY
    parts = [p.replace(delimiter, b"") for p in parts]
    with tempfile.TemporaryDirectory() as directory:
        spools = Spools(Path(directory))
        items = asyncio.run(spooled_read(body(parts), spools, chunk=chunk, spool_above=spool_above))
        assert spools.contents(items) == parts
