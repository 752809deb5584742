"""components/config_reader.py: the value rules and the path-keeping Section reader."""
from __future__ import annotations

import pytest

from components.config_reader import (
    Problems, Section, bucket_problem, cidr_problem, host_key_problem, is_hostname, show,
)


@pytest.mark.parametrize("name, expected", [
    ("db1", True), ("a-b.example.com", True), ("x" * 63 + ".example.com", True),
    ("x" * 64 + ".example.com", False), ("-a.example.com", False), ("a_b.example.com", False),
    ("example.com.", False), ("10.0.0.300", False), ("", False),
])
def test_is_hostname(name, expected):
    assert is_hostname(name) is expected


def test_fqdn_needs_two_labels():
    assert is_hostname("localhost", min_labels=2) is False
    assert is_hostname("example.com", min_labels=2) is True


@pytest.mark.parametrize("key", [
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY=",
    "ssh-rsa AAAAB3NzaC1yc2E=",
    "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t",
])
def test_host_key_types(key):
    assert host_key_problem(key) is None


def test_host_key_needs_valid_base64():
    assert host_key_problem("ssh-ed25519 AAAA=A") is not None


def test_bucket_length_limits():
    assert bucket_problem("a" * 63) is None
    assert bucket_problem("a" * 64) is not None
    assert bucket_problem("xn--bucket") is not None


def test_cidr_normalized():
    assert cidr_problem("192.0.2.1") == ("192.0.2.1/32", None)
    assert cidr_problem("192.0.2.0/24") == ("192.0.2.0/24", None)


def test_show_quotes_strings_and_writes_json_for_the_rest():
    assert (show("a"), show(5), show(True), show(None)) == ("'a'", "5", "true", "null")


def test_section_records_problems_and_returns_defaults():
    problems = Problems()
    section = Section(problems, "nginx", '{"maxFails": "many", "extra": 1}', ("maxFails",))
    assert section.integer("maxFails", 1) == 1
    assert section.text("missing", "dflt") == "dflt"
    assert problems.items == ["nginx.extra: unknown key",
                              "nginx.maxFails: expected an integer, got 'many'"]
