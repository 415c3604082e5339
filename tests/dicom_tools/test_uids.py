import pytest

from dicom_tools.errors import IngestError
from dicom_tools.uids import is_valid_uid, validate_uid


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "1.2",
        "1.2.840.10008.1.2.1",
        "1.2.826.0.1.3680043.8.498.10",
        "2.25.329800735698586629295641978511506172918",
        "1." + "2" * 62,  # exactly 64 characters
    ],
)
def test_valid_uids(value: str) -> None:
    assert is_valid_uid(value)
    assert validate_uid(value, attribute="SOPInstanceUID") == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1." + "2" * 63,  # 65 characters
        "../../etc/passwd",
        "1.2/../3",
        "1.2.3/4",
        "1..2",
        ".1.2",
        "1.2.",
        "1.02.3",  # leading zero in a multi-digit component
        "01.2",
        "1.2.3a",
        "1.2 ",
        " 1.2",
        "1.2\n",
        "1.2\x00",
        "1.\u0662",  # ARABIC-INDIC DIGIT TWO is a digit to \d, not to PS3.5
        "1.2\\1.3",  # two values
        "-1.2",
    ],
)
def test_invalid_uids(value: str) -> None:
    assert not is_valid_uid(value)
    with pytest.raises(IngestError) as caught:
        validate_uid(value, attribute="StudyInstanceUID")
    assert caught.value.reason == "invalid_uid"
    assert caught.value.attribute == "StudyInstanceUID"
    assert "StudyInstanceUID" in caught.value.message


def test_invalid_uid_message_is_bounded() -> None:
    with pytest.raises(IngestError) as caught:
        validate_uid("9" * 10_000, attribute="SOPInstanceUID")
    assert len(caught.value.message) < 200
