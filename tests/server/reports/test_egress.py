"""Webhooks reach public addresses only: checked on saving and at every connection."""

from __future__ import annotations

import socket

import pytest

from server.errors import InvalidInput
from server.reports.egress import PublicResolver, address_literal, is_public
from server.reports.webhooks import check_url


@pytest.mark.parametrize(
    "url",
    [
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.5.5/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://203.0.113.7/hook",
    ],
)
def test_a_private_or_reserved_address_is_refused_on_saving(url: str) -> None:
    with pytest.raises(InvalidInput, match="private or reserved"):
        check_url(url, allow_loopback=False)


def test_public_addresses_and_names_pass_the_check_and_loopback_only_when_allowed() -> None:
    assert check_url("https://8.8.8.8/hook", allow_loopback=False) == "https://8.8.8.8/hook"
    assert check_url("https://receiver.example.org/hook", allow_loopback=False)
    assert check_url("http://127.0.0.1:9/hook", allow_loopback=True) == "http://127.0.0.1:9/hook"
    assert address_literal("[::1]") == "::1"
    assert address_literal("receiver.example.org") is None
    assert is_public("8.8.8.8")
    assert not is_public("203.0.113.7")
    assert not is_public("::ffff:192.168.1.1")


async def test_the_connector_s_resolver_refuses_a_name_that_resolves_inside() -> None:
    refusing = PublicResolver(allow_loopback=False)
    try:
        with pytest.raises(OSError, match="private or reserved"):
            await refusing.resolve("localhost", 443, socket.AF_INET)
    finally:
        await refusing.close()
    allowing = PublicResolver(allow_loopback=True)
    try:
        found = await allowing.resolve("localhost", 443, socket.AF_INET)
        assert {r["host"] for r in found} == {"127.0.0.1"}
    finally:
        await allowing.close()
