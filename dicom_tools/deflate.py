"""Bounded inflation of Deflated transfer syntax datasets (PS3.5 A.5): no deflate bombs."""

from __future__ import annotations

import mmap
import zlib

from dicom_tools.errors import IngestError

DEFAULT_MAX_INFLATED_BYTES = 256 * 1024 * 1024
_INPUT_CHUNK = 64 * 1024
_MAX_TRAILING = 8


def inflate_dataset(data: bytes | mmap.mmap, start: int, *, max_inflated_bytes: int) -> bytes:
    """Inflate the raw deflate stream at ``data[start:]``, refusing more than the limit."""
    if max_inflated_bytes < 1:
        raise ValueError("max_inflated_bytes must be positive")
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    fed_end = start
    try:
        while fed_end < len(data) and not inflater.eof:
            pending = data[fed_end : fed_end + _INPUT_CHUNK]
            fed_end += len(pending)
            while pending and not inflater.eof:
                # max_length caps every step, so a bomb never expands past limit + 1 bytes.
                out += inflater.decompress(pending, max_inflated_bytes - len(out) + 1)
                if len(out) > max_inflated_bytes:
                    raise IngestError(
                        "inflated_too_large",
                        f"deflated dataset inflates to more than {max_inflated_bytes} bytes",
                    )
                pending = inflater.unconsumed_tail
    except zlib.error as exc:
        raise IngestError(
            "malformed", f"deflated dataset is not a valid deflate stream: {exc}"
        ) from exc
    if not inflater.eof:
        raise IngestError("truncated", "the data ends before the deflate stream does")
    trailing = len(inflater.unused_data) + len(data) - fed_end
    # PS3.5 A.5 allows one NUL pad byte; some writers (dctool) append a gzip-style
    # CRC-32 and size. Anything longer is data that nothing would ever parse.
    if trailing > _MAX_TRAILING:
        raise IngestError("malformed", f"{trailing} bytes follow the end of the deflate stream")
    return bytes(out)
