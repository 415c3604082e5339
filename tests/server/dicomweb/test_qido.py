"""QIDO-RS: PS3.4 matching at each level, includefield, paging, invalid queries, org scoping."""

from __future__ import annotations

from typing import Any

from tests.dicom_tools.part10 import dataset, part10
from tests.server.dicomweb.helpers import stow
from tests.support import Client, World, audit_events

ROOT = "1.2.826.0.1.3680043.8.498.7"
S1, S2, S3, S4 = (f"{ROOT}.1.{n}" for n in range(1, 5))


def instance(
    study: str,
    series: int,
    number: int,
    *,
    name: bytes,
    patient_id: bytes,
    date: bytes,
    accession: bytes,
    modality: bytes,
    charset: bytes = b"",
) -> bytes:
    """A small CT-class instance with the attributes QIDO matches on."""
    sop = f"{study}.{series}.{number}"
    extra: dict[int, tuple[str, bytes]] = {
        0x00080030: ("TM", b"101500"),
        0x00080050: ("SH", accession),
        0x00081030: ("LO", b"Chest " + modality),
        0x00200011: ("IS", str(series).encode()),
    }
    if charset:
        extra[0x00080005] = ("CS", charset)
    body = dataset(
        replace={
            0x00080018: sop.encode(),
            0x00080020: date,
            0x00080060: modality,
            0x00100010: name,
            0x00100020: patient_id,
            0x0020000D: study.encode(),
            0x0020000E: f"{study}.{series}".encode(),
            0x00200013: str(number).encode(),
        },
        extra=extra,
    )
    return part10(body, sop_instance_uid=sop)


CLINIC_A = [
    instance(S1, 1, 1, name=b"Doe^Jane", patient_id=b"P-0001", date=b"20200115",
             accession=b"A100", modality=b"CT"),
    instance(S1, 1, 2, name=b"Doe^Jane", patient_id=b"P-0001", date=b"20200115",
             accession=b"A100", modality=b"CT"),
    instance(S1, 2, 1, name=b"Doe^Jane", patient_id=b"P-0001", date=b"20200115",
             accession=b"A100", modality=b"MR"),
    instance(S2, 1, 1, name=b"Doe^John", patient_id=b"P-0002", date=b"20201231",
             accession=b"A200", modality=b"MR"),
    instance(S3, 1, 1, name=b"Smith^Anna", patient_id=b"Q_0003", date=b"20210301",
             accession=b"B300", modality=b"CT"),
    instance(S4, 1, 1, name="Müller^Jürgen".encode("latin-1"), patient_id=b"R-0004",
             date=b"20220202", accession=b"C400", modality=b"US", charset=b"ISO_IR 100"),
]  # fmt: skip
CLINIC_B = [
    instance(S1, 9, 1, name=b"Other^Person", patient_id=b"P-0001", date=b"20200115",
             accession=b"A100", modality=b"XA"),
]  # fmt: skip


async def _seed(client: Client, world: World) -> None:
    assert (await stow(client, world, "gp-a", CLINIC_A)).status == 200
    assert (await stow(client, world, "gp-b", CLINIC_B)).status == 200


async def _search(client: Client, world: World, path: str, user: str = "gp-a") -> Any:
    response = await client.get(path, headers=world.auth(user))
    assert response.status == 200, (path, response.status, await response.text())
    assert response.content_type == "application/dicom+json"
    return await response.json()


def _values(results: list[dict[str, Any]], tag: str) -> list[Any]:
    return [r[tag]["Value"][0] if "Value" in r[tag] else None for r in results]


async def test_study_matching(client: Client, world: World) -> None:
    await _seed(client, world)

    async def studies(query: str) -> set[str]:
        return set(_values(await _search(client, world, "/dicom-web/studies?" + query), "0020000D"))

    assert await studies("") == {S1, S2, S3, S4}
    assert await studies("PatientName=Doe^Jane") == {S1}
    assert await studies("PatientName=doe%5EjANE") == {S1}
    assert await studies("PatientName=Doe") == set()
    assert await studies("PatientName=Doe*") == {S1, S2}
    assert await studies("PatientName=d?e^j*") == {S1, S2}
    assert await studies("PatientName=*ann*") == {S3}
    assert await studies("PatientName=jane&fuzzymatching=true") == {S1}
    assert await studies("PatientName=M%C3%9CLLER*") == {S4}
    assert await studies("PatientID=P-000*") == {S1, S2}
    assert await studies("PatientID=p-0001") == set()
    assert await studies("PatientID=P_00*") == set()  # _ is a literal, not a wildcard
    assert await studies("PatientID=Q_00*") == {S3}
    assert await studies("00100020=P-0002") == {S2}
    assert await studies("StudyDate=20200115") == {S1}
    assert await studies("StudyDate=20200101-20201231") == {S1, S2}
    assert await studies("StudyDate=20210101-") == {S3, S4}
    assert await studies("StudyDate=-20200630") == {S1}
    assert await studies("StudyTime=1015") == {S1, S2, S3, S4}
    assert await studies("StudyTime=1016-") == set()
    assert await studies("AccessionNumber=A200") == {S2}
    assert await studies("ModalitiesInStudy=MR") == {S1, S2}
    assert await studies("ModalitiesInStudy=CT") == {S1, S3}
    assert await studies("ModalitiesInStudy=US,XA") == {S4}
    assert await studies(f"StudyInstanceUID={S1},{S3}") == {S1, S3}
    assert await studies(f"StudyInstanceUID={S2}%5C{S4}") == {S2, S4}
    assert await studies("PatientName=Doe*&StudyDate=20201231") == {S2}


async def test_study_attributes_paging_and_includefield(client: Client, world: World) -> None:
    await _seed(client, world)
    (s1,) = await _search(client, world, f"/dicom-web/studies?StudyInstanceUID={S1}")
    assert s1["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}
    assert s1["00201206"] == {"vr": "IS", "Value": [2]}
    assert s1["00201208"] == {"vr": "IS", "Value": [3]}
    assert s1["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}
    assert s1["00080020"] == {"vr": "DA", "Value": ["20200115"]}
    assert s1["00080050"] == {"vr": "SH", "Value": ["A100"]}
    assert s1["00080056"] == {"vr": "CS", "Value": ["ONLINE"]}
    assert s1["00080090"] == {"vr": "PN"}  # required, empty
    assert s1["00081190"]["Value"][0].endswith(f"/dicom-web/studies/{S1}")
    assert "00081030" not in s1
    (described,) = await _search(
        client, world, f"/dicom-web/studies?StudyInstanceUID={S1}&includefield=StudyDescription"
    )
    assert described["00081030"] == {"vr": "LO", "Value": ["Chest CT"]}
    (everything,) = await _search(
        client, world, f"/dicom-web/studies?StudyInstanceUID={S1}&includefield=all"
    )
    assert everything["00080062"] == {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]}
    newest_first = await _search(client, world, "/dicom-web/studies")
    assert _values(newest_first, "0020000D") == [S4, S3, S2, S1]
    page = await _search(client, world, "/dicom-web/studies?limit=2&offset=1")
    assert _values(page, "0020000D") == [S3, S2]


async def test_series_and_instance_levels(client: Client, world: World) -> None:
    await _seed(client, world)
    series = await _search(client, world, f"/dicom-web/studies/{S1}/series")
    assert _values(series, "0020000E") == [f"{S1}.1", f"{S1}.2"]
    assert _values(series, "00080060") == ["CT", "MR"]
    assert _values(series, "00201209") == [2, 1]
    assert _values(series, "00200011") == [1, 2]
    assert series[0]["00081190"]["Value"][0].endswith(f"/studies/{S1}/series/{S1}.1")
    assert "00100010" not in series[0]  # study attributes are fixed by the path
    mr = await _search(client, world, f"/dicom-web/studies/{S1}/series?Modality=MR")
    assert _values(mr, "0020000E") == [f"{S1}.2"]
    everywhere = await _search(client, world, "/dicom-web/series?PatientName=Doe*")
    assert {r["0020000E"]["Value"][0] for r in everywhere} == {f"{S1}.1", f"{S1}.2", f"{S2}.1"}
    assert everywhere[0]["00100010"]["Value"][0]["Alphabetic"].startswith("Doe")
    assert "00201208" not in everywhere[0]  # study aggregates only at the study level

    instances = await _search(client, world, f"/dicom-web/studies/{S1}/series/{S1}.1/instances")
    assert _values(instances, "00080018") == [f"{S1}.1.1", f"{S1}.1.2"]
    assert _values(instances, "00200013") == [1, 2]
    assert _values(instances, "00280008") == [1, 1]
    assert instances[1]["00081190"]["Value"][0].endswith(
        f"/studies/{S1}/series/{S1}.1/instances/{S1}.1.2"
    )
    in_study = await _search(client, world, f"/dicom-web/studies/{S1}/instances")
    assert len(in_study) == 3
    assert "00080060" in in_study[0]  # series attributes, as the path fixes only the study
    by_uid = await _search(client, world, f"/dicom-web/instances?SOPInstanceUID={S2}.1.1")
    assert _values(by_uid, "0020000D") == [S2]
    numbered = await _search(client, world, f"/dicom-web/studies/{S1}/instances?InstanceNumber=2")
    assert _values(numbered, "00080018") == [f"{S1}.1.2"]


async def test_modalities_in_study_matches_the_study_at_series_and_instance_level(
    client: Client, world: World
) -> None:
    """A study attribute in a series or instance query matches the series' or instance's study."""
    await _seed(client, world)
    series = await _search(client, world, "/dicom-web/series?ModalitiesInStudy=MR")
    assert {r["0020000E"]["Value"][0] for r in series} == {f"{S1}.1", f"{S1}.2", f"{S2}.1"}
    scoped = await _search(client, world, f"/dicom-web/studies/{S1}/series?ModalitiesInStudy=CT")
    assert _values(scoped, "0020000E") == [f"{S1}.1", f"{S1}.2"]
    assert (
        await _search(client, world, f"/dicom-web/studies/{S2}/series?ModalitiesInStudy=CT") == []
    )
    instances = await _search(client, world, "/dicom-web/instances?ModalitiesInStudy=US")
    assert _values(instances, "00080018") == [f"{S4}.1.1"]
    in_series = await _search(
        client, world, f"/dicom-web/studies/{S1}/series/{S1}.2/instances?ModalitiesInStudy=CT,XA"
    )
    assert _values(in_series, "00080018") == [f"{S1}.2.1"]


async def test_invalid_queries_are_400_with_a_reason(client: Client, world: World) -> None:
    cases = [
        "/dicom-web/studies?StudyDate=2020-01-01",
        "/dicom-web/studies?StudyDate=20201301",
        "/dicom-web/studies?StudyDate=-",
        "/dicom-web/studies?StudyTime=2500",
        "/dicom-web/studies?limit=abc",
        "/dicom-web/studies?limit=0",
        "/dicom-web/studies?offset=-1",
        "/dicom-web/studies?fuzzymatching=maybe",
        "/dicom-web/studies?Colour=blue",
        "/dicom-web/studies?includefield=NotAKeyword",
        "/dicom-web/studies?StudyInstanceUID=1.2.abc",
        "/dicom-web/studies?ModalitiesInStudy=c%20t%21",
        "/dicom-web/studies?PatientName=a&PatientName=b",
        "/dicom-web/series?SeriesNumber=one",
        "/dicom-web/studies/not-a-uid/series",
    ]
    for path in cases:
        response = await client.get(path, headers=world.auth("gp-a"))
        body = await response.json()
        assert response.status == 400, path
        assert body["error"]["message"], path
    unsupported = await client.get(
        "/dicom-web/studies?IssuerOfPatientID=x", headers=world.auth("gp-a")
    )
    assert unsupported.status == 200
    assert "IssuerOfPatientID" in unsupported.headers["Warning"]
    xml = await client.get(
        "/dicom-web/studies", headers={**world.auth("gp-a"), "Accept": "application/dicom+xml"}
    )
    assert xml.status == 406


async def test_other_organisations_see_only_their_own(client: Client, world: World) -> None:
    await _seed(client, world)
    theirs = await _search(client, world, "/dicom-web/studies", user="gp-b")
    assert _values(theirs, "0020000D") == [S1]
    assert theirs[0]["00100010"]["Value"][0]["Alphabetic"] == "Other^Person"
    assert theirs[0]["00201208"]["Value"] == [1]
    assert await _search(client, world, "/dicom-web/studies", user="radio") == []
    assert await _search(client, world, "/dicom-web/instances", user="radio") == []
    response = await client.get(f"/dicom-web/studies/{S3}/series", headers=world.auth("gp-b"))
    assert response.status == 404
    denied = [e for e in await audit_events(client.app, "dicom.search") if e.outcome == "denied"]
    assert [(e.actor, e.object_id, e.org_id) for e in denied] == [
        ("gp-b", S3, world.orgs["clinic-a"])
    ]
