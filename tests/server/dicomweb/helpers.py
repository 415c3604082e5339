"""Helpers for DICOMweb tests: multipart bodies, STOW requests, blobs on disk, index rows."""

from __future__ import annotations

import secrets
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from sqlalchemy import func, select

from server import keys
from server.archive.models import Instance, Series, Study
from tests.dicom_tools.part10 import bundled
from tests.support import Client, World

DICOM_PARTS = 'multipart/related; type="application/dicom"'


def multipart(parts: list[bytes], *, boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart/related body of application/dicom parts and its Content-Type."""
    boundary = boundary or secrets.token_hex(16)
    body = b"".join(
        b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + part + b"\r\n"
        for part in parts
    )
    body += b"--" + boundary.encode() + b"--\r\n"
    return body, f"{DICOM_PARTS}; boundary={boundary}"


async def stow(
    client: Client, world: World, user: str, parts: list[bytes], *, study: str | None = None
) -> ClientResponse:
    """POST instances to /dicom-web/studies[/{study}] as the user."""
    body, content_type = multipart(parts)
    path = "/dicom-web/studies" + (f"/{study}" if study else "")
    return await client.post(
        path, data=body, headers={**world.auth(user), "Content-Type": content_type}
    )


def parts_of(response_body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """The (Content-Type, body) of each part of a multipart response."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + response_body
    )
    assert message.is_multipart(), content_type
    found = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        found.append((str(part["Content-Type"]), payload))
    return found


async def retrieve(client: Client, world: World, user: str, path: str, **headers: str) -> Any:
    """GET a WADO-RS resource; returns the response and its parts when it is multipart."""
    response = await client.get(path, headers={**world.auth(user), **headers})
    body = await response.read()
    if response.status == 200 and response.content_type == "multipart/related":
        return response, parts_of(body, response.headers["Content-Type"])
    return response, body


def read_bundled(name: str) -> bytes:
    return bundled(name).read_bytes()


def blob_files(client: Client) -> list[Path]:
    """Every file under blobs/ except the staging locks of running processes."""
    root = client.app[keys.SETTINGS].data_dir / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".lock")


async def index_counts(client: Client) -> tuple[int, int, int]:
    """Rows in the studies, series and instances tables."""
    async with client.app[keys.SESSIONMAKER]() as session:
        return (
            await session.scalar(select(func.count()).select_from(Study)) or 0,
            await session.scalar(select(func.count()).select_from(Series)) or 0,
            await session.scalar(select(func.count()).select_from(Instance)) or 0,
        )


def failures(body: dict[str, Any]) -> list[tuple[int, str]]:
    """(FailureReason, comment) of each FailedSOPSequence item of a STOW response."""
    return [
        (item["00081197"]["Value"][0], item["00000902"]["Value"][0])
        for item in body.get("00081198", {}).get("Value", [])
    ]


def referenced(body: dict[str, Any]) -> list[str]:
    """SOP Instance UIDs of the ReferencedSOPSequence of a STOW response."""
    return [item["00081155"]["Value"][0] for item in body.get("00081199", {}).get("Value", [])]
