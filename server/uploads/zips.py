"""Reading an uploaded zip archive safely: limits, bomb rules and member refusals.

Member names are only labels, never paths; a member is refused before it is
read when its name, size, compression ratio or encryption says it should be.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from typing import IO

from server.errors import InvalidInput, MalformedInput

MAX_ZIP_BYTES = 1024 * 1024 * 1024
MAX_MEMBERS = 1000
MAX_ENTRIES = 10 * MAX_MEMBERS
"""Entries (files and folders) a zip may declare before it is refused unread."""
MAX_UNCOMPRESSED_BYTES = 2 * 1024 * 1024 * 1024
MAX_RATIO = 100
"""Uncompressed/compressed size above which a member larger than RATIO_FLOOR is a bomb."""
RATIO_FLOOR = 1024 * 1024
SKIPPED_PREFIXES = ("__MACOSX/",)
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_EOCD_SEARCH = 22 + 65535


@dataclass(frozen=True, slots=True)
class FileResult:
    """What happened to one uploaded file or zip member."""

    name: str
    outcome: str
    reason: str | None = None
    message: str = ""
    study_uid: str | None = None

    @property
    def ok(self) -> bool:
        """True when the file is in the archive (stored now, before, or replaced)."""
        return self.outcome in ("stored", "duplicate", "replaced")


def _unsafe_name(name: str) -> bool:
    """True for names that would escape a folder if anyone used them as a path."""
    parts = name.replace("\\", "/").split("/")
    return (
        name.startswith(("/", "\\"))
        or ".." in parts
        or "\x00" in name
        or (len(name) > 1 and name[1] == ":")
    )


def label(name: str) -> str:
    """A printable, bounded label for a file or member name."""
    printable = "".join(c if c.isprintable() else "?" for c in name)
    return printable[-200:]


def _rejected(name: str, reason: str, message: str) -> FileResult:
    return FileResult(name=label(name), outcome="rejected", reason=reason, message=message)


def refusal(info: zipfile.ZipInfo, members: int, budget: int, max_bytes: int) -> FileResult | None:
    """Why a member is refused before reading it, or None when it may be read."""
    name = info.filename
    if _unsafe_name(name):
        return _rejected(name, "unsafe_name", "The name points outside the archive's folder.")
    if members >= MAX_MEMBERS:
        return _rejected(
            name, "too_many_members", f"Only the first {MAX_MEMBERS} files of a zip are read."
        )
    if info.flag_bits & 0x1:
        return _rejected(name, "encrypted", "Encrypted zip members cannot be read.")
    if info.file_size > max_bytes:
        return _rejected(name, "too_large", f"The file is larger than {max_bytes} bytes.")
    if info.file_size > budget:
        return _rejected(
            name,
            "too_large",
            f"The zip unpacks to more than {MAX_UNCOMPRESSED_BYTES} bytes in total.",
        )
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        return _rejected(
            name,
            "zip_bomb",
            f"The file is compressed more than {MAX_RATIO}:1; it looks like a zip bomb.",
        )
    return None


def read_member(archive_file: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | FileResult:
    """The member's bytes (never more than its declared size), or why it cannot be read."""
    try:
        with archive_file.open(info) as member:
            return member.read(info.file_size + 1)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, ValueError) as error:
        return _rejected(info.filename, "unreadable", f"The zip member cannot be read: {error}")


def declared_entries(spool: IO[bytes]) -> int | None:
    """The entry count in a zip's end-of-central-directory record (ZIP64 too), None if absent."""
    size = spool.seek(0, 2)
    start = max(0, size - _EOCD_SEARCH)
    spool.seek(start)
    tail = spool.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        return None
    entries = int.from_bytes(tail[at + 10 : at + 12], "little")
    locator = at - 20
    if entries == 0xFFFF and locator >= 0 and tail[locator : locator + 4] == _EOCD64_LOCATOR:
        offset = int.from_bytes(tail[locator + 8 : locator + 16], "little")
        spool.seek(offset)
        record = spool.read(40)
        if record[:4] == _EOCD64 and len(record) == 40:
            entries = int.from_bytes(record[32:40], "little")
    return entries


def open_zip(spool: IO[bytes]) -> zipfile.ZipFile:
    """The zip archive, refused before its central directory is parsed if it is too big."""
    entries = declared_entries(spool)
    if entries is None:
        raise MalformedInput("The upload is not a readable zip archive.")
    if entries > MAX_ENTRIES:
        raise InvalidInput(f"The zip holds {entries} entries; at most {MAX_ENTRIES} are read.")
    spool.seek(0)
    return zipfile.ZipFile(spool)
