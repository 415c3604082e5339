"""pynetdicom as the SCU: byte-exact C-STORE (deflate too), refused datasets, C-FIND matching."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import _config

from server import keys
from server.dimse import query
from server.dimse.lifetime import MAXIMUM_PDU_SIZE
from tests.server.dicomweb.helpers import retrieve
from tests.server.dimse.peers import (
    Listener,
    associate,
    blob,
    bundled,
    dataset_bytes,
    scu,
    stored,
)
from tests.support import Client, World, sha256

AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'
GENERAL_ECG_STORAGE = "1.2.840.10008.5.1.4.1.1.9.1.2"
ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
# Deflate, big endian, RLE, JPEG 2000 and a 12-lead ECG, each sent as its file holds it.
CHUNKED = [
    "image_dfl.dcm",
    "MR_small_bigendian.dcm",
    "SC_rgb_rle.dcm",
    "JPEG2000.dcm",
    "waveform_ecg.dcm",
]


def _store_files(listener: Listener, calling: str, paths: list[Path]) -> list[int]:
    metas = [dcmread(p, stop_before_pixels=True) for p in paths]
    ae = scu(calling, [(m.SOPClassUID, m.file_meta.TransferSyntaxUID) for m in metas])
    assoc = associate(listener, ae)
    try:
        return [int(assoc.send_c_store(path).Status) for path in paths]
    finally:
        assoc.release()


async def test_chunked_c_store_stores_the_sent_bytes_exactly(
    listener: Listener, client: Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # raw file bytes, no decoding
    paths = [bundled(name) for name in CHUNKED]
    statuses = await asyncio.to_thread(_store_files, listener, "CLINIC_A", paths)
    assert statuses == [0x0000] * len(paths)
    instances = await stored(listener, world.orgs["clinic-a"])
    for path in paths:
        original = path.read_bytes()
        instance = instances[dcmread(path, stop_before_pixels=True).SOPInstanceUID]
        assert instance.transfer_syntax_uid == dcmread(path).file_meta.TransferSyntaxUID
        assert sha256(dataset_bytes(blob(listener, instance.sha256))) == sha256(
            dataset_bytes(original)
        ), path.name
        ds = dcmread(path, stop_before_pixels=True)
        reply, parts = await retrieve(
            client,
            world,
            "gp-a",
            f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}",
            Accept=AS_STORED,
        )
        assert reply.status == 200, path.name
        assert [dataset_bytes(p) for _, p in parts] == [dataset_bytes(original)], path.name


def _copy(name: str, **attributes: str) -> Dataset:
    """A bundled file as a new instance in a new study, with some attributes changed."""
    ds = dcmread(bundled(name))
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        setattr(ds, keyword, generate_uid())
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def _send(listener: Listener, datasets: list[Dataset]) -> list[tuple[int, str]]:
    contexts = {(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID) for ds in datasets}
    assoc = associate(listener, scu("CLINIC_A", sorted(contexts)))
    try:
        return [
            (int(rsp.Status), str(rsp.get("ErrorComment", "")))
            for rsp in map(assoc.send_c_store, datasets)
        ]
    finally:
        assoc.release()


async def test_non_conformant_datasets_get_failure_statuses_and_leave_nothing(
    listener: Listener, world: World
) -> None:
    no_study = _copy("CT_small.dcm")
    del no_study.StudyInstanceUID
    with pytest.warns(UserWarning, match="Invalid value for VR UI"):
        bad_uid = _copy("CT_small.dcm", SeriesInstanceUID="1.2.3/../4")
    no_waveform = _copy("waveform_ecg.dcm")
    del no_waveform.WaveformSequence
    sent = await asyncio.to_thread(_send, listener, [no_study, bad_uid, no_waveform])
    assert [status for status, _ in sent] == [0xA900, 0xA900, 0xA900]
    for (_, comment), attribute in zip(
        sent, ["StudyInstanceUID", "SeriesInstanceUID", "WaveformSequence"], strict=True
    ):
        assert attribute in comment
    assert await stored(listener, world.orgs["clinic-a"]) == {}
    blobs = listener.app[keys.SETTINGS].data_dir / "blobs"
    assert [p for p in blobs.rglob("*") if p.is_file() and p.suffix != ".lock"] == []


def _find(listener: Listener, calling: str, query: Dataset) -> list[tuple[int, Dataset | None]]:
    assoc = associate(listener, scu(calling, [(STUDY_ROOT_FIND, ExplicitVRLittleEndian)]))
    try:
        return [
            (int(status.Status), identifier)
            for status, identifier in assoc.send_c_find(query, STUDY_ROOT_FIND)
        ]
    finally:
        assoc.release()


def _study_query(**keys: str) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    query.PatientID = ""
    query.NumberOfStudyRelatedInstances = ""
    query.ModalitiesInStudy = ""
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return query


async def test_c_find_matches_wildcards_within_the_calling_organisation(
    listener: Listener,
) -> None:
    paths = [bundled("CT_small.dcm"), bundled("MR_small.dcm")]
    assert await asyncio.to_thread(_store_files, listener, "CLINIC_A", paths) == [0, 0]
    ct, mr = (dcmread(p, stop_before_pixels=True) for p in paths)

    both = await asyncio.to_thread(
        _find, listener, "CLINIC_A", _study_query(PatientName="CompressedSamples*")
    )
    assert [status for status, _ in both] == [0xFF00, 0xFF00, 0x0000]
    found = {ds.StudyInstanceUID: ds for _, ds in both if ds is not None}
    assert set(found) == {ct.StudyInstanceUID, mr.StudyInstanceUID}
    assert found[ct.StudyInstanceUID].PatientID == ct.PatientID
    assert found[ct.StudyInstanceUID].ModalitiesInStudy == "CT"
    assert found[ct.StudyInstanceUID].NumberOfStudyRelatedInstances == 1

    one = await asyncio.to_thread(
        _find, listener, "CLINIC_A", _study_query(PatientName="*^MR?", ModalitiesInStudy="MR")
    )
    assert [(s, ds.StudyInstanceUID if ds else None) for s, ds in one] == [
        (0xFF00, mr.StudyInstanceUID),
        (0x0000, None),
    ]
    other = await asyncio.to_thread(
        _find, listener, "CLINIC_B", _study_query(PatientName="CompressedSamples*")
    )
    assert other == [(0x0000, None)]


def _find_then_cancel(listener: Listener, query: Dataset) -> list[int]:
    """C-FIND, sending C-CANCEL as soon as the first match arrives; the statuses received."""
    assoc = associate(listener, scu("CLINIC_A", [(STUDY_ROOT_FIND, ExplicitVRLittleEndian)]))
    try:
        statuses = []
        context_id = assoc.accepted_contexts[0].context_id
        for status, _ in assoc.send_c_find(query, STUDY_ROOT_FIND, msg_id=7):
            statuses.append(int(status.Status))
            if statuses == [0xFF00]:
                assoc.send_c_cancel(7, context_id)
        return statuses
    finally:
        assoc.release()


async def test_c_cancel_ends_a_c_find_with_the_cancel_status(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    studies = [_copy("CT_small.dcm", PatientID="CANCEL-ME") for _ in range(12)]
    assert [s for s, _ in await asyncio.to_thread(_send, listener, studies)] == [0] * 12
    built = query.response

    def paced(identifier: Dataset, values: dict[str, object]) -> Dataset:
        time.sleep(0.05)  # leaves the C-CANCEL time to arrive before the last match
        return built(identifier, values)

    monkeypatch.setattr(query, "response", paced)
    statuses = await asyncio.to_thread(
        _find_then_cancel, listener, _study_query(PatientID="CANCEL-ME")
    )
    assert statuses[-1] == 0xFE00  # Cancel: matching terminated due to Cancel request
    assert set(statuses[:-1]) == {0xFF00}
    assert 1 <= len(statuses) - 1 < 12


def _pdf_report() -> Dataset:
    """A minimal Encapsulated PDF instance."""
    ds = Dataset()
    ds.SOPClassUID = ENCAPSULATED_PDF_STORAGE
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        setattr(ds, keyword, generate_uid())
    ds.PatientID = "PDF-1"
    ds.PatientName = "Report^Only"
    ds.Modality = "DOC"
    ds.BurnedInAnnotation = "YES"
    ds.DocumentTitle = "ECG report"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4\n%%EOF\n"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


async def test_general_ecg_and_encapsulated_pdf_are_stored(
    listener: Listener, world: World
) -> None:
    general_ecg = _copy("waveform_ecg.dcm", SOPClassUID=GENERAL_ECG_STORAGE)
    pdf = _pdf_report()
    sent = await asyncio.to_thread(_send, listener, [general_ecg, pdf])
    assert sent == [(0x0000, ""), (0x0000, "")]
    instances = await stored(listener, world.orgs["clinic-a"])
    assert {uid: i.sop_class_uid for uid, i in instances.items()} == {
        general_ecg.SOPInstanceUID: GENERAL_ECG_STORAGE,
        pdf.SOPInstanceUID: ENCAPSULATED_PDF_STORAGE,
    }


def _acceptor_maximum_length(listener: Listener) -> int:
    assoc = associate(listener, scu("CLINIC_A", [(STUDY_ROOT_FIND, ExplicitVRLittleEndian)]))
    try:
        return int(assoc.acceptor.maximum_length)
    finally:
        assoc.release()


async def test_the_scp_accepts_large_pdus(listener: Listener) -> None:
    assert await asyncio.to_thread(_acceptor_maximum_length, listener) == MAXIMUM_PDU_SIZE
