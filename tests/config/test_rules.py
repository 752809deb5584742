"""components/config/rules.py: the value rules."""
from __future__ import annotations

import pytest

from components.config.rules import (
    bucket_problem, cidr_problem, host_key_problem, is_hostname, nginx_time_problem, show,
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
    "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t",
])
def test_host_key_types(key):
    assert host_key_problem(key) is None


@pytest.mark.parametrize("kind", ["ssh-rsa", "ssh-dss"])
def test_rsa_and_dsa_pins_are_refused_with_the_way_out(kind):
    """pulumi-command pins HostKeyAlgorithms to the pinned key's type: `ssh-rsa` means SHA-1
    RSA signatures, which OpenSSH >= 8.8 refuses (and DSA is gone since 7.0)."""
    problem = host_key_problem(f"{kind} AAAAB3NzaC1yc2E=")
    assert problem.startswith(f"{kind} host keys cannot be pinned")
    assert "ssh-keyscan -t ed25519" in problem


def test_host_key_needs_valid_base64():
    assert host_key_problem("ssh-ed25519 AAAA=A") is not None


def test_bucket_length_limits():
    assert bucket_problem("a" * 63) is None
    assert bucket_problem("a" * 64) is not None
    assert bucket_problem("xn--bucket") is not None


def test_cidr_normalized():
    assert cidr_problem("192.0.2.1") == ("192.0.2.1/32", None)
    assert cidr_problem("192.0.2.0/24") == ("192.0.2.0/24", None)
    assert cidr_problem("2001:0DB8::1") == ("2001:db8::1/128", None)
    assert cidr_problem("::/0") == ("::/0", None)


def test_show_quotes_strings_and_writes_json_for_the_rest():
    assert (show("a"), show(5), show(True), show(None)) == ("'a'", "5", "true", "null")


@pytest.mark.parametrize("value, ok", [("500ms", True), ("1s", True), ("2m", True),
                                       ("30", True), ("1h", False), ("1 s", False)])
def test_nginx_time_is_one_rule(value, ok):
    assert (nginx_time_problem(value) is None) is ok
