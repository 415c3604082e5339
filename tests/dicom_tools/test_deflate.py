import tracemalloc

import pytest

from dicom_tools.deflate import inflate_dataset
from dicom_tools.errors import IngestError

from .part10 import deflate_bomb, raw_deflate

PAYLOAD = b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100" * 500


def test_round_trip() -> None:
    data = b"prefix" + raw_deflate(PAYLOAD)
    assert inflate_dataset(data, 6, max_inflated_bytes=len(PAYLOAD)) == PAYLOAD


def test_one_byte_over_the_limit_is_refused() -> None:
    with pytest.raises(IngestError) as caught:
        inflate_dataset(raw_deflate(PAYLOAD), 0, max_inflated_bytes=len(PAYLOAD) - 1)
    assert caught.value.reason == "inflated_too_large"


def test_bomb_is_stopped_without_inflating_it() -> None:
    bomb = deflate_bomb(64 * 1024 * 1024)
    assert len(bomb) < 128 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(IngestError) as caught:
            inflate_dataset(bomb, 0, max_inflated_bytes=1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.reason == "inflated_too_large"
    assert peak < 8 * 1024 * 1024


def test_truncated_stream() -> None:
    stream = raw_deflate(PAYLOAD)
    with pytest.raises(IngestError) as caught:
        inflate_dataset(stream[: len(stream) // 2], 0, max_inflated_bytes=10**7)
    assert caught.value.reason == "truncated"


def test_garbage_is_malformed() -> None:
    with pytest.raises(IngestError) as caught:
        inflate_dataset(b"\xff" * 64, 0, max_inflated_bytes=10**7)
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize("trailer", [b"", b"\x00", b"CRC4SIZE"])
def test_allowed_trailers(trailer: bytes) -> None:
    assert inflate_dataset(raw_deflate(PAYLOAD) + trailer, 0, max_inflated_bytes=10**7) == PAYLOAD


def test_data_after_the_stream_is_malformed() -> None:
    with pytest.raises(IngestError) as caught:
        inflate_dataset(raw_deflate(PAYLOAD) + b"MZ" * 100, 0, max_inflated_bytes=10**7)
    assert caught.value.reason == "malformed"


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        inflate_dataset(raw_deflate(PAYLOAD), 0, max_inflated_bytes=0)
