"""components/config/rules.py: the value rules."""
from __future__ import annotations

import base64
import struct

import pytest

from components.config import rules
from components.config.rules import (
    access_key_id_problem, bucket_problem, cidr_problem, host_key_problem, image_problem,
    is_hostname, nginx_time_problem, show, text_problem, url_problem,
)

# Real public keys (ssh-keygen; the private halves were thrown away).
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID9iDKygqTjLJTGNlrrfSNS7J7u4Nej213ePYwi3Q0or"
ECDSA_256 = ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBII88cYsg"
             "LxFk7lVRtlaOWBVmy8LpNITixaZ48lqLl0ITS49fJzos1hOr4q5yXsCmNkIpaPMbha356oQUHwuGMc=")
ECDSA_384 = ("ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBFuOLzSSa"
             "tgBxjxFzsXDY16C2pPW1Bs71oraubO5Ft6E0DAVTSaHVD+Jri4zZmi87CXIZj1S+R9GMZJI/2Y4iZzMtJ4F"
             "NWBUpmWCpLEn85Lntoi2w9CBKfNdCTk7O1+MSA==")


def ssh_blob(*fields: bytes) -> str:
    return base64.b64encode(b"".join(struct.pack(">I", len(f)) + f for f in fields)).decode()


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
    ED25519, ECDSA_256, ECDSA_384,
    "sk-ssh-ed25519@openssh.com " + ssh_blob(b"sk-ssh-ed25519@openssh.com", bytes(32), b"ssh:"),
])
def test_host_key_types(key):
    assert host_key_problem(key) is None


@pytest.mark.parametrize("key", [
    "ssh-ed25519 " + ECDSA_256.split()[1],  # another type's key under this type's name
    "ecdsa-sha2-nistp384 " + ECDSA_256.split()[1],  # another curve
    "ssh-ed25519 " + ssh_blob(b"ssh-ed25519", bytes(31)),  # a key of the wrong length
    "ssh-ed25519 " + ED25519.split()[1][:-4],  # cut short
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY=",  # the type name alone
    ED25519 + " root@host",  # ssh-keyscan's host name or a comment left in
    ED25519 + "\n",
])
def test_host_key_must_be_a_whole_key_of_its_type(key):
    assert host_key_problem(key) == (
        f"{show(key)} is not a public host key "
        "('<type> <base64>', as printed by ssh-keyscan without the host name)")


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


@pytest.mark.parametrize("value, problem", [
    ("www.example.com", None),
    ("evil\n.example.com", "'evil\\n.example.com' contains a control character (U+000A)"),
    ("a\tb", "'a\\tb' contains a control character (U+0009)"),
    ("a\x7fb", "'a\\x7fb' contains a control character (U+007F)"),
    ("a\u200bb", "'a\\u200bb' contains a control character (U+200B)"),  # zero-width space
    ("a\u2028b", "'a\\u2028b' contains a control character (U+2028)"),  # line separator
    (" a", "' a' has leading or trailing whitespace"),
    ("a\u00a0", "'a\\xa0' has leading or trailing whitespace"),  # no-break space
])
def test_text_is_taken_as_written_or_refused(value, problem):
    assert text_problem(value) == problem


@pytest.mark.parametrize("value", [
    "evil\n.example.com", "www.example.com\n", "www.example.com\r\n",
    "\u017fhop.example.com", "\u212aey.example.com",  # long s, Kelvin sign: fold to s, k
])
def test_patterns_match_the_whole_value(value):
    """`re.match` with `$` let a line break through: `$` matches before a final newline."""
    assert not is_hostname(value)


def test_url_is_checked_before_urlsplit_cleans_it():
    # urlsplit drops tabs and line breaks anywhere: the value is refused, not cleaned
    assert url_problem("https://ca.exam\tple.com/dir", ("https",)) == (
        "'https://ca.exam\\tple.com/dir' is not a URL (only letters, digits and "
        "-._~:/?#[]@!$&'()*+,;=% may appear)")


@pytest.mark.parametrize("value", [
    "AKIAIOSFODNN7EXAMPLE",  # AWS (the documentation's example)
    "ASIAY34FZKBOKMUTVV7A",  # AWS temporary credentials
    "DO00QWERTYUIOPASDFGH",  # DigitalOcean Spaces
    "minioadmin", "app-user", "svc.static@minio", "5UX0ZBWJGXHEE4T5EXAMPLE",  # MinIO
    "GOOG1EXAMPLE0ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGHIJ",  # GCS HMAC
    "0123456789abcdef0123456789abcdef",  # Cloudflare R2
    "0012a3b4c5d6e7f8000000001",  # Backblaze B2
    "A" * 128,
])
def test_access_key_ids_of_real_providers(value):
    assert access_key_id_problem(value) is None


@pytest.mark.parametrize("value", [
    "ab", "A" * 129, "AKIA EXAMPLE", "'AKIAEXAMPLE'", '"AKIAEXAMPLE"', "key=value", "a,b",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",  # a secret access key pasted by mistake
])
def test_access_key_id_refused(value):
    assert access_key_id_problem(value) == (
        f"{show(value)} is not an access key id (3 to 128 letters, digits and . _ - @ +)")


@pytest.mark.parametrize("value", [
    "python:3.12-slim", "nginx", "nginx:1.27", "certbot/certbot:v2.11.0",
    "djscale-test/python:3.12", "registry.example.com:5000/team/app:1.0",
    "localhost/app", "localhost:5000/app_x__y-z:latest", "10.214.200.1:5000/djstb/nginx:bed",
    "nginx@sha256:" + "a" * 64, "nginx:1.27@sha256:" + "0" * 64,
])
def test_image_references_docker_accepts(value):
    assert image_problem(value) is None


@pytest.mark.parametrize("value", [
    "python 3.12", "Python:3.12", "nginx:", "nginx:-bad", ":1.0", "nginx@sha256:abc",
    "registry.example.com:port/app", "-nginx", "nginx/", "a//b", "nginx:1.27;rm",
    "UPPER/app", "a" * 256,
])
def test_image_references_docker_refuses(value):
    assert image_problem(value) == (
        f"{show(value)} is not an image reference "
        "([registry[:port]/]name[:tag][@digest], e.g. python:3.12-slim)")


# --- backups --------------------------------------------------------------------------------

CALENDARS_SYSTEMD_TAKES = ["daily", "Weekly", "*-*-* 03:00:00", "03:00", "Mon..Fri 02:30",
                           "Sat,Sun *-*-* 04:15:30", "*-*-* 00/6:00:00", "*-*-01 01:00",
                           "2026-01-01 00:00:00 UTC", "monday 12:00", "*-1,7-1 10:00",
                           "Mon..Wed,Fri 1..5:0/15"]
CALENDARS_REFUSED = ["nightly", "*-*-* 25:00", "03:60", "Mon..Fri", "*-*-* 03:00:00 Europe/X",
                     "*-13-01 00:00", "00/0:00", "03:00; rm -rf /", "Funday 03:00",
                     "*-*-* 03:00 extra", "3..1:00"]


def test_calendar_events_the_rule_takes_are_the_ones_systemd_takes():
    import subprocess

    for value in CALENDARS_SYSTEMD_TAKES:
        assert rules.calendar_problem(value) is None, value
        check = subprocess.run(["systemd-analyze", "calendar", value], capture_output=True)
        assert check.returncode == 0, value
    for value in CALENDARS_REFUSED:
        assert rules.calendar_problem(value) == (
            f"{value!r} is not a systemd calendar event (e.g. daily, *-*-* 03:00:00, "
            "Mon..Fri 02:30, *-*-* 00/6:00:00)"), value


def test_backup_key_prefixes_and_passphrases():
    for value in ("backups/", "prod/db-", "a", "a.b_c-d/e/"):
        assert rules.key_prefix_problem(value) is None, value
    for value in ("/backups/", "a//b/", "../x/", "a b/", "x/./", "é/", "a" * 201):
        assert rules.key_prefix_problem(value) == (
            f"{value!r} is not a key prefix (letters, digits and ._- in segments separated "
            "by /, at most 200 characters, e.g. backups/ or prod/db-)"), value
    assert rules.passphrase_problem("sixteen chars ok") is None
    assert rules.passphrase_problem("short one") == (
        "is shorter than 16 characters; the value is not shown (it is a secret)")
    assert "control character" in rules.passphrase_problem("a long passphrase\nx")
