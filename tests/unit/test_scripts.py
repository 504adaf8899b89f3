"""Every Lua script documents its contract, and names every key it touches in KEYS."""

from __future__ import annotations

import re

import pytest

from qrun import scripts

SCRIPT_NAMES = sorted(scripts.SCRIPTS)


def test_the_package_ships_every_operation_as_a_script() -> None:
    assert {"enqueue", "promote", "ack", "retry", "dead"} <= set(scripts.SCRIPTS)


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_each_script_opens_with_its_contract(name: str) -> None:
    source = scripts.SCRIPTS[name].source.decode()
    assert source.startswith("--[[")
    header = source.split("]]", 1)[0]
    # A script that touches no key (publish_events: channels are not keys) says so.
    assert ("KEYS[1]" in header or re.search(r"^KEYS\s+none", header, re.M)) and "Returns:" in header


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_every_key_a_script_uses_is_documented_and_none_is_built_inside(name: str) -> None:
    source = scripts.SCRIPTS[name].source.decode()
    header, body = source.split("]]", 1)
    documented = set(re.findall(r"KEYS\[(\d+)\]", header))
    used = set(re.findall(r"KEYS\[(\d+)\]", body))
    assert used == documented
    assert "'KEYS'" not in body.upper().replace('"', "'")
    if documented:
        assert ".." not in re.sub(r"--.*", "", body)  # no key names built by concatenation
    else:  # it may build channel names, so it must call nothing that takes a key
        assert set(re.findall(r"rcall\('([A-Z]+)'", body)) <= {"PUBLISH"}
        assert "redis.call(" not in body and "redis.pcall(" not in body


def test_script_shas_are_sha1_of_the_source() -> None:
    import hashlib

    for script in scripts.SCRIPTS.values():
        assert script.sha == hashlib.sha1(script.source).hexdigest().encode()
