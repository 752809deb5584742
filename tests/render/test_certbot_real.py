"""The expiry check and the status command run for real: in a private network namespace, a
real `openssl s_server` on 127.0.0.1:443 (the check's production address) serves a
certificate for the site's name (SNI) that expires in 5 days, 60 days, or that expired, and
another one for every other name; the check reads what is served, with the real openssl and
date. The status command runs the same check and reads the alert files (tests/render/
test_alerts.py writes them), with a stand-in systemctl for the timers."""
from __future__ import annotations

import datetime
import os
import re
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from components.config import AcmeConfig
from components.render.certbot import (render_certificate_check_script,
                                       render_certificate_status_script)
from tests.render.conftest import make_config
from tests.render.netns import in_netns, wait_listening
from tests.render.stubs import calls, make_stubs

DOMAIN = "shop.example.com"  # make_config()'s
DAY = datetime.timedelta(days=1)


def _certificate(directory: Path, name: str, not_after: datetime.datetime) -> tuple[Path, Path]:
    """A self-signed certificate for `name` that ends at `not_after`, 90 days long (as Let's
    Encrypt's)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_after - 90 * DAY).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def served(netns, tmp_path):
    """serve(days): openssl s_server on 127.0.0.1:443 in the namespace, the site's name
    (SNI) answered with a certificate ending an hour short of `days` days from now (so the
    whole days left are `days` - 1, however quick the check), any other name with one of a
    year. Returns the end date of the site's certificate."""
    in_netns(netns, "ip", "link", "set", "lo", "up", check=True)
    started: list[subprocess.Popen] = []

    def serve(days: float) -> datetime.datetime:
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        ends = now + days * DAY - datetime.timedelta(hours=1)
        site_cert, site_key = _certificate(tmp_path, DOMAIN, ends)
        other_cert, other_key = _certificate(tmp_path, "other.example.com", now + 365 * DAY)
        started.append(subprocess.Popen(
            ["ip", "netns", "exec", netns, "openssl", "s_server", "-quiet",
             "-accept", "127.0.0.1:443", "-cert", str(other_cert), "-key", str(other_key),
             "-servername", DOMAIN, "-cert2", str(site_cert), "-key2", str(site_key)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_listening(netns, 443)
        return ends

    yield serve
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


def _check_script(tmp_path: Path, warning_days: int = 14) -> Path:
    cfg = make_config(acme=AcmeConfig(email="ops@example.com",
                                      expiry_warning_days=warning_days))
    script = tmp_path / "djscale-certificate-check"
    script.write_text(render_certificate_check_script(cfg))  # 127.0.0.1:443, as deployed
    script.chmod(0o755)
    return script


def _check(netns: str, tmp_path: Path, warning_days: int = 14) -> subprocess.CompletedProcess:
    return in_netns(netns, str(_check_script(tmp_path, warning_days)), timeout=60)


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_certificate_that_ends_in_5_days_fails_the_check(netns, served, tmp_path):
    ends = served(5)
    result = _check(netns, tmp_path)
    assert result.returncode == 1
    assert result.stderr == (f"djscale: the certificate served for {DOMAIN} expires at "
                             f"{_iso(ends)}: 4 days left, fewer than 14: renewals are "
                             "failing\n")
    assert result.stdout == ""


def test_a_certificate_that_ends_in_60_days_passes(netns, served, tmp_path):
    ends = served(60)
    result = _check(netns, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"djscale: the certificate served for {DOMAIN} expires at "
                             f"{_iso(ends)}: 59 days left (alert below 14)\n")


def test_the_window_is_the_configured_one(netns, served, tmp_path):
    served(20)  # 19 days and 23 hours left
    assert _check(netns, tmp_path, warning_days=14).returncode == 0
    assert _check(netns, tmp_path, warning_days=19).returncode == 0
    assert _check(netns, tmp_path, warning_days=20).returncode == 1


def test_an_expired_certificate_fails_the_check(netns, served, tmp_path):
    ends = served(-1)
    result = _check(netns, tmp_path)
    assert result.returncode == 1
    assert result.stderr == (f"djscale: the certificate served for {DOMAIN} EXPIRED at "
                             f"{_iso(ends)}\n")


def test_nothing_served_fails_the_check(netns, tmp_path):
    in_netns(netns, "ip", "link", "set", "lo", "up", check=True)
    result = _check(netns, tmp_path)
    assert result.returncode == 1
    assert result.stderr == (f"djscale: no certificate served for {DOMAIN} on 127.0.0.1:443 "
                             "(is nginx running?)\n")


# --- the status command --------------------------------------------------------------------

def _status(netns: str, tmp_path: Path) -> subprocess.CompletedProcess:
    check = _check_script(tmp_path)
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    make_stubs(bin_dir, {"systemctl": 'echo "NEXT LEFT LAST PASSED UNIT ACTIVATES"'})
    script = tmp_path / "djscale-certificate-status"
    script.write_text(render_certificate_status_script(
        check_script=str(check), state_dir=str(tmp_path / "alerts")))
    script.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", STUB_LOG=str(log))
    result = in_netns(netns, str(script), timeout=60, env=env)
    assert calls(log) == ["systemctl list-timers --all --no-pager djscale-certbot-renew.timer "
                          "djscale-certificate-check.timer"]
    return result


def test_status_of_a_healthy_proxy(netns, served, tmp_path):
    ends = served(60)
    alerts = tmp_path / "alerts"
    alerts.mkdir()
    (alerts / "djscale-certbot-renew.ok").write_text("2026-01-02T00:13:07Z\n")
    result = _status(netns, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"""\
== served certificate
djscale: the certificate served for {DOMAIN} expires at {_iso(ends)}: 59 days left (alert below 14)

== last runs
djscale-certbot-renew.service: last run succeeded at 2026-01-02T00:13:07Z
djscale-certificate-check.service: no finished run recorded

== timers
NEXT LEFT LAST PASSED UNIT ACTIVATES

== alerts ({alerts})
none
"""


def test_status_with_a_failed_renewal_and_a_certificate_about_to_end(netns, served, tmp_path):
    served(5)
    alerts = tmp_path / "alerts"
    alerts.mkdir()
    failed = ("unit: djscale-certbot-renew.service\nfailed at: 2026-01-02T12:40:01Z\n"
              "result: exit-code (exit status 1)\n")
    (alerts / "djscale-certbot-renew.failed").write_text(failed)
    (alerts / "djscale-certbot-renew.ok").write_text("2026-01-01T00:13:07Z\n")  # older
    (alerts / "djscale-certificate-check.ok").write_text("2026-01-02T06:20:00Z\n")
    result = _status(netns, tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"djscale: the certificate served for \S+ expires at \S+: 4 days left, "
                        r"fewer than 14: renewals are failing", lines[1]), lines[1]
    assert lines[4:6] == [
        "djscale-certbot-renew.service: last run FAILED at 2026-01-02T12:40:01Z",
        "djscale-certificate-check.service: last run succeeded at 2026-01-02T06:20:00Z"]
    assert result.stdout.endswith(f"== alerts ({alerts})\n"
                                  f"--- {alerts}/djscale-certbot-renew.failed\n{failed}")


def test_status_without_a_served_certificate_fails_even_without_alerts(netns, tmp_path):
    in_netns(netns, "ip", "link", "set", "lo", "up", check=True)
    result = _status(netns, tmp_path)  # no alert directory yet: nothing ever ran
    assert result.returncode == 1
    assert "(is nginx running?)\n" in result.stdout
    assert result.stdout.endswith("none\n")
