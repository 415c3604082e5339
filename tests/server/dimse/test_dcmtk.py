"""dcmtk peers against the SCP: echoscu, storescu in several transfer syntaxes, findscu."""

from __future__ import annotations

import io

from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.server.dimse.peers import (
    Listener,
    blob,
    bundled,
    dcmtk,
    stored,
)
from tests.support import World, audit_trail, sha256

# (file, storescu proposal): uncompressed, 12-lead ECG, SR, RT, JPEG baseline/extended,
# JPEG-LS, JPEG 2000, RLE; each file keeps its transfer syntax.
FILES = [
    ("CT_small.dcm", "-xe"),
    ("waveform_ecg.dcm", "-xe"),
    ("test-SR.dcm", "-xe"),
    ("rtplan.dcm", "-xi"),
    ("SC_rgb_jpeg_dcmtk.dcm", "-xy"),
    ("JPEG-lossy.dcm", "-xx"),
    ("MR_small_jpeg_ls_lossless.dcm", "-xt"),
    ("JPEG2000.dcm", "-xw"),
    ("SC_rgb_rle.dcm", "-xr"),
]
_TRAILING_PADDING = 0xFFFCFFFC


def _content(ds: Dataset) -> dict[int, object]:
    """Element values by tag, without group lengths and trailing padding, which dcmtk drops."""
    return {e.tag: e.value for e in ds if e.tag.element != 0 and e.tag != _TRAILING_PADDING}


async def test_echoscu_verifies_for_a_known_ae(listener: Listener) -> None:
    assert (await dcmtk("echoscu", listener, "CLINIC_A")).startswith("rc=0")


async def test_unknown_calling_ae_is_rejected_and_audited(listener: Listener) -> None:
    output = await dcmtk("echoscu", listener, "STRANGER")
    assert output.startswith("rc=1")
    assert "Calling AE Title Not Recognized" in output
    assert await audit_trail(listener.app, "dicom.associate") == [
        ("dicom:STRANGER", "STRANGER", "denied")
    ]


async def test_storescu_stores_each_transfer_syntax_unchanged(
    listener: Listener, world: World
) -> None:
    for name, proposal in FILES:
        output = await dcmtk("storescu", listener, "CLINIC_A", proposal, files=(bundled(name),))
        assert output.startswith("rc=0"), (name, output)
    instances = await stored(listener, world.orgs["clinic-a"])
    assert len(instances) == len(FILES)
    for name, _ in FILES:
        original = dcmread(bundled(name))
        instance = instances[original.SOPInstanceUID]
        data = blob(listener, instance.sha256)
        assert sha256(data) == instance.sha256
        assert instance.source == "dimse"
        received = dcmread(io.BytesIO(data))
        assert received.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert _content(received) == _content(original), name
    trail = await audit_trail(listener.app, "dicom.store")
    studies = sorted(dcmread(bundled(n)).StudyInstanceUID for n, _ in FILES)
    assert sorted(trail) == [("dicom:CLINIC_A", uid, "success") for uid in studies]


async def test_same_instance_again_succeeds_and_a_different_one_is_refused(
    listener: Listener, world: World
) -> None:
    jpeg_ls = (bundled("MR_small_jpeg_ls_lossless.dcm"),)
    assert (await dcmtk("storescu", listener, "CLINIC_A", "-xt", files=jpeg_ls)).startswith("rc=0")
    assert (await dcmtk("storescu", listener, "CLINIC_A", "-xt", files=jpeg_ls)).startswith("rc=0")
    other = await dcmtk("storescu", listener, "CLINIC_A", "-v", files=(bundled("MR_small.dcm"),))
    assert "Received Store Response (Unknown Status: 0x111)" in other, other
    (instance,) = (await stored(listener, world.orgs["clinic-a"])).values()
    assert instance.transfer_syntax_uid == "1.2.840.10008.1.2.4.80"


async def test_findscu_sees_only_the_calling_organisations_studies(listener: Listener) -> None:
    ct = dcmread(bundled("CT_small.dcm"))
    stored_ct = await dcmtk("storescu", listener, "CLINIC_A", files=(bundled("CT_small.dcm"),))
    assert stored_ct.startswith("rc=0")
    query = ["-v", "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", f"PatientID={ct.PatientID}"]
    query += ["-k", "StudyInstanceUID", "-k", "ModalitiesInStudy"]
    owner = await dcmtk("findscu", listener, "CLINIC_A", *query)
    other = await dcmtk("findscu", listener, "CLINIC_B", *query)
    assert owner.startswith("rc=0"), owner
    assert "Find Response: 1 (Pending)" in owner
    assert ct.StudyInstanceUID in owner
    assert "(Pending)" not in other
    assert ct.StudyInstanceUID not in other
    assert "Received Final Find Response (Success)" in other
