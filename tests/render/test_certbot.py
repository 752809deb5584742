"""certbot scripts and units, the expiry check and the status command: exact text, systemd's
own check of the units, and the renewal run with a stand-in `docker` that records what would
run (the expiry check and the status command against real TLS servers:
tests/render/test_certbot_real.py)."""
from __future__ import annotations

import subprocess

import pytest

from components.config import AcmeConfig
from components.render.alerts import render_alert_unit
from components.render.certbot import (render_certbot_names_script,
                                       render_certbot_obtain_script,
                                       render_certificate_check_script,
                                       render_certificate_check_service,
                                       render_certificate_check_timer,
                                       render_certificate_status_script,
                                       render_disable_renewal_script,
                                       render_enable_renewal_script, render_renew_script,
                                       render_renew_service, render_renew_timer)
from tests.render.conftest import assert_golden, check_shell, make_config
from tests.render.stubs import calls, make_stubs, run_sandboxed

IMAGE = "certbot/certbot:v5.10.0"
STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


def test_obtain_script(cfg, tmp_path):
    script = render_certbot_obtain_script(cfg, certbot_image=IMAGE, webroot="/var/www/certbot",
                                          letsencrypt_dir="/etc/letsencrypt")
    assert_golden("certbot-obtain.sh", script)
    check_shell(script, tmp_path)


def test_obtain_script_for_a_private_ca_without_email(tmp_path):
    cfg = make_config(acme=AcmeConfig(email=None, server="https://10.0.0.5:14000/dir"))
    script = render_certbot_obtain_script(cfg, certbot_image="local/certbot",
                                          extra_ca_bundle="/etc/djscale/acme-ca.pem",
                                          docker_network="host")
    assert_golden("certbot-obtain-private-ca.sh", script)
    check_shell(script, tmp_path)


def test_renew_script(cfg, tmp_path):
    script = render_renew_script(cfg, certbot_image=IMAGE)
    assert_golden("certbot-renew.sh", script)
    check_shell(script, tmp_path)


def test_certificate_check_script(cfg, tmp_path):
    script = render_certificate_check_script(cfg)
    assert_golden("certificate-check.sh", script)
    check_shell(script, tmp_path)
    assert "domain=shop.example.com\naddress=127.0.0.1\nport=443\nwarning_days=14\n" in script


def test_the_check_says_when_openssl_is_missing(cfg):
    result = subprocess.run(["/bin/bash", "-c", render_certificate_check_script(cfg)],
                            env={"PATH": "/nonexistent"}, capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (1, "djscale: openssl is not installed: the "
                                                     "served certificate cannot be read\n")


def test_the_warning_window_is_the_configured_one(cfg):
    cfg = make_config(acme=AcmeConfig(email="ops@example.com", expiry_warning_days=30))
    assert "\nwarning_days=30\n" in render_certificate_check_script(cfg)


def test_certificate_status_script(tmp_path):
    script = render_certificate_status_script()
    assert_golden("certificate-status.sh", script)
    check_shell(script, tmp_path)


def test_units_text_and_systemd_accepts_them(tmp_path):
    units = {
        "djscale-certbot-renew.service": render_renew_service(),
        "djscale-certbot-renew.timer": render_renew_timer(),
        "djscale-certificate-check.service": render_certificate_check_service(),
        "djscale-certificate-check.timer": render_certificate_check_timer(),
    }
    assert units["djscale-certbot-renew.service"] == """\
# managed by djscale, do not edit
[Unit]
Description=djscale: renew the site's certificate and reload nginx
Wants=network-online.target
After=network-online.target docker.service
# A failed renewal (or a renewed certificate nginx rejects) is an alert: a critical journal
# entry and a state file, until a run succeeds again.
OnFailure=djscale-alert@%n.service

[Service]
Type=oneshot
# certbot sleeps up to ~8 minutes first, then talks to the CA: a run still going after an
# hour hangs, and is stopped and counted as a failure instead of staying silent.
TimeoutStartSec=1h
ExecStart=/usr/local/sbin/djscale-certbot-renew
ExecStartPost=/usr/local/sbin/djscale-alert succeeded %n
"""
    assert units["djscale-certbot-renew.timer"] == """\
# managed by djscale, do not edit
[Unit]
Description=djscale: renew the site's certificate twice a day

[Timer]
OnCalendar=*-*-* 00,12:00:00
RandomizedDelaySec=1h
Persistent=true

[Install]
WantedBy=timers.target
"""
    assert units["djscale-certificate-check.service"] == """\
# managed by djscale, do not edit
[Unit]
Description=djscale: check the expiry of the certificate nginx serves
After=docker.service
# A certificate close to its end (or none served) is an alert: a critical journal entry and
# a state file, until a check succeeds again.
OnFailure=djscale-alert@%n.service

[Service]
Type=oneshot
TimeoutStartSec=5min
ExecStart=/usr/local/sbin/djscale-certificate-check
ExecStartPost=/usr/local/sbin/djscale-alert succeeded %n
"""
    assert units["djscale-certificate-check.timer"] == """\
# managed by djscale, do not edit
[Unit]
Description=djscale: check the served certificate's expiry once a day

[Timer]
# Hours away from the renewals (00:00 and 12:00, up to an hour late, plus certbot's sleep).
OnCalendar=*-*-* 06:00:00
RandomizedDelaySec=1h
Persistent=true

[Install]
WantedBy=timers.target
"""
    # systemd-analyze checks that ExecStart/ExecStartPost exist: real executables here.
    units["djscale-certbot-renew.service"] = render_renew_service("/bin/true", "/bin/true")
    units["djscale-certificate-check.service"] = render_certificate_check_service(
        "/bin/true", "/bin/true")
    units["djscale-alert@.service"] = render_alert_unit("/bin/true")  # their OnFailure=
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify",
                             *(str(tmp_path / name) for name in units)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_enable_and_disable_renewal_scripts(tmp_path):
    enable, disable = render_enable_renewal_script(), render_disable_renewal_script()
    assert_golden("certbot-renew-enable.sh", enable)
    assert_golden("certbot-renew-disable.sh", disable)
    check_shell(enable, tmp_path)
    check_shell(disable, tmp_path)

    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    make_stubs(bin_dir, {"systemctl": 'exit "${SYSTEMCTL_RC:-0}"'})
    assert run_sandboxed(enable, bin_dir, log).returncode == 0
    assert calls(log) == ["systemctl daemon-reload",
                          "systemctl enable --now djscale-certbot-renew.timer",
                          "systemctl enable --now djscale-certificate-check.timer"]
    log.unlink()
    assert run_sandboxed(enable, bin_dir, log, env={"SYSTEMCTL_RC": "1"}).returncode != 0
    log.unlink()
    gone = run_sandboxed(disable, bin_dir, log, env={"SYSTEMCTL_RC": "5"})  # no such unit
    assert gone.returncode == 0, gone.stderr
    assert calls(log) == ["systemctl disable --now djscale-certbot-renew.timer",
                          "systemctl disable --now djscale-certificate-check.timer"]


def test_services_refuse_a_path_systemd_would_split():
    for render in (render_renew_service, render_certificate_check_service):
        with pytest.raises(ValueError):
            render("/usr/local/sbin/my renew")
        with pytest.raises(ValueError):
            render("/usr/local/sbin/renew", "/usr/local/sbin/my alert")


# --- scripts run against a stand-in docker ------------------------------------------------

@pytest.fixture
def sandbox(tmp_path):
    letsencrypt, webroot = tmp_path / "letsencrypt", tmp_path / "webroot"
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    # `docker run ... renew` makes the deploy hook's marker when RENEWED=1, `... certonly`
    # when ISSUED=1;
    # `docker exec ... nginx -t` fails when NGINX_BROKEN=1.
    make_stubs(bin_dir, {"docker": f"""
if [ "$1" = run ] && [[ " $* " == *" renew "* ]] && [ "${{RENEWED:-}}" = 1 ]; then
    touch {letsencrypt}/.djscale-renewed
fi
if [ "$1" = run ] && [[ " $* " == *" certonly "* ]] && [ "${{ISSUED:-}}" = 1 ]; then
    touch {letsencrypt}/.djscale-renewed
fi
if [ "$1" = exec ] && [[ " $* " == *" -t "* ]] && [ "${{NGINX_BROKEN:-}}" = 1 ]; then
    exit 1
fi
exit 0"""})
    return {"letsencrypt": letsencrypt, "webroot": webroot, "bin": bin_dir, "log": log}


def _mounts(box) -> str:
    return (f"-v {box['letsencrypt']}:/etc/letsencrypt "
            f"-v /var/lib/letsencrypt:/var/lib/letsencrypt -v {box['webroot']}:{box['webroot']}")


def test_obtain_runs_certbot_certonly_and_replaces_a_certificate_from_another_ca(cfg, sandbox):
    box = sandbox
    script = render_certbot_obtain_script(cfg, certbot_image=IMAGE, webroot=str(box["webroot"]),
                                          letsencrypt_dir=str(box["letsencrypt"]))
    certonly = (f"docker run --rm {_mounts(box)} {IMAGE} certonly --webroot -w {box['webroot']} "
                f"--cert-name shop.example.com --server {STAGING} "
                "--email ops@example.com --no-eff-email --agree-tos --non-interactive "
                "--keep-until-expiring")
    new = certonly.replace(" --cert-name", " -d shop.example.com --cert-name")

    def run():
        box["log"].unlink(missing_ok=True)
        result = run_sandboxed(script, box["bin"], box["log"],
                               private_mounts=("/var/lib",))
        assert result.returncode == 0, result.stderr
        return calls(box["log"])

    assert run() == [new]
    assert box["webroot"].is_dir()
    renewal = box["letsencrypt"] / "renewal" / "shop.example.com.conf"
    renewal.parent.mkdir(parents=True)
    renewal.write_text(f"[renewalparams]\nserver = {STAGING}\n")
    # same CA: certbot decides (keeps it until it is due), with the names it has
    assert run() == [certonly]
    renewal.write_text("[renewalparams]\nserver = https://other.example/dir\n")
    assert run() == [certonly + " --force-renewal"]


def test_a_new_certificate_gets_every_name_an_existing_one_keeps_its_own(sandbox):
    """A change of names is certbot-names' (after the TLS config that answers every name's
    challenge is live): here, before it, certbot must not be asked for a name the running
    nginx may not answer yet."""
    box = sandbox
    cfg = make_config(domain_aliases=("shop.example.net", "www.shop.example.net"))
    script = render_certbot_obtain_script(cfg, certbot_image=IMAGE, webroot=str(box["webroot"]),
                                          letsencrypt_dir=str(box["letsencrypt"]))
    result = run_sandboxed(script, box["bin"], box["log"], private_mounts=("/var/lib",))
    assert result.returncode == 0, result.stderr
    assert " certonly --webroot -w {} -d shop.example.com -d shop.example.net -d " \
           "www.shop.example.net --cert-name shop.example.com ".format(box["webroot"]) \
           in calls(box["log"])[0]
    renewal = box["letsencrypt"] / "renewal" / "shop.example.com.conf"
    renewal.parent.mkdir(parents=True)
    renewal.write_text(f"[renewalparams]\nserver = {STAGING}\n")
    box["log"].unlink()
    result = run_sandboxed(script, box["bin"], box["log"], private_mounts=("/var/lib",))
    assert result.returncode == 0, result.stderr
    assert " -d " not in calls(box["log"])[0]


def test_names_script(tmp_path):
    cfg = make_config(domain_aliases=("shop.example.net", "www.shop.example.net"))
    script = render_certbot_names_script(cfg, certbot_image=IMAGE)
    assert_golden("certbot-names.sh", script)
    check_shell(script, tmp_path)


def test_names_are_changed_under_the_same_certificate_name_then_nginx_reloads(sandbox):
    box = sandbox
    cfg = make_config(domain_aliases=("shop.example.net",))
    script = render_certbot_names_script(cfg, certbot_image=IMAGE, webroot=str(box["webroot"]),
                                         letsencrypt_dir=str(box["letsencrypt"]))
    box["letsencrypt"].mkdir()
    certonly = (f"docker run --rm {_mounts(box)} {IMAGE} certonly --webroot -w {box['webroot']} "
                f"-d shop.example.com -d shop.example.net --cert-name shop.example.com "
                f"--server {STAGING} --email ops@example.com --no-eff-email --agree-tos "
                "--non-interactive --keep-until-expiring --renew-with-new-domains "
                "--deploy-hook touch /etc/letsencrypt/.djscale-renewed")
    check = "docker exec djscale-nginx nginx -t -q -c /etc/djscale/nginx/nginx.conf"
    reload = "docker exec djscale-nginx nginx -s reload -c /etc/djscale/nginx/nginx.conf"

    same = run_sandboxed(script, box["bin"], box["log"], private_mounts=("/var/lib",))
    assert same.returncode == 0, same.stderr
    assert calls(box["log"]) == [certonly]  # same names: certbot keeps it, no reload

    box["log"].unlink()
    issued = run_sandboxed(script, box["bin"], box["log"], env={"ISSUED": "1"},
                           private_mounts=("/var/lib",))
    assert issued.returncode == 0, issued.stderr
    assert calls(box["log"]) == [certonly, check, reload]
    assert not (box["letsencrypt"] / ".djscale-renewed").exists()

    box["log"].unlink()
    broken = run_sandboxed(script, box["bin"], box["log"], env={"ISSUED": "1",
                                                               "NGINX_BROKEN": "1"},
                           private_mounts=("/var/lib",))
    assert broken.returncode == 1
    assert calls(box["log"]) == [certonly, check]
    assert broken.stderr.splitlines()[-1] == (
        "djscale: nginx -t failed after the certificate was issued again: it is not served")


def test_renew_reloads_nginx_only_after_a_renewal(cfg, sandbox):
    box = sandbox
    script = render_renew_script(cfg, certbot_image=IMAGE, webroot=str(box["webroot"]),
                                 letsencrypt_dir=str(box["letsencrypt"]))
    box["letsencrypt"].mkdir()
    renew = (f"docker run --rm {_mounts(box)} {IMAGE} renew "
             "--deploy-hook touch /etc/letsencrypt/.djscale-renewed")
    check = "docker exec djscale-nginx nginx -t -q -c /etc/djscale/nginx/nginx.conf"
    reload = "docker exec djscale-nginx nginx -s reload -c /etc/djscale/nginx/nginx.conf"
    marker = box["letsencrypt"] / ".djscale-renewed"

    nothing_due = run_sandboxed(script, box["bin"], box["log"], private_mounts=("/var/lib",))
    assert nothing_due.returncode == 0, nothing_due.stderr
    assert calls(box["log"]) == [renew]

    box["log"].unlink()
    renewed = run_sandboxed(script, box["bin"], box["log"], "--no-random-sleep-on-renew",
                            "--force-renewal", env={"RENEWED": "1"},
                            private_mounts=("/var/lib",))
    assert renewed.returncode == 0, renewed.stderr
    assert calls(box["log"]) == [renew + " --no-random-sleep-on-renew --force-renewal",
                                 check, reload]
    assert not marker.exists()

    box["log"].unlink()
    broken = run_sandboxed(script, box["bin"], box["log"], env={"RENEWED": "1",
                                                               "NGINX_BROKEN": "1"},
                           private_mounts=("/var/lib",))
    assert broken.returncode != 0
    assert calls(box["log"]) == [renew, check]  # no reload with a config nginx rejects
    assert marker.exists()  # the next run tries again
    # the last line says what failed: the alert quotes it (tests/render/test_alerts.py)
    assert broken.stderr.splitlines()[-1] == (
        "djscale: nginx -t failed after a renewal: the new certificate is not served")


def test_a_failed_certbot_fails_the_renewal_and_says_so(cfg, sandbox):
    box = sandbox
    make_stubs(box["bin"], {"docker": "exit 1"})  # certbot: could not reach the CA
    script = render_renew_script(cfg, certbot_image=IMAGE, webroot=str(box["webroot"]),
                                 letsencrypt_dir=str(box["letsencrypt"]))
    box["letsencrypt"].mkdir()
    failed = run_sandboxed(script, box["bin"], box["log"], private_mounts=("/var/lib",))
    assert failed.returncode == 1
    assert [c.split()[:2] for c in calls(box["log"])] == [["docker", "run"]]  # nothing else
    assert failed.stderr.splitlines()[-1] == \
        "djscale: certbot renew failed (its output is above)"
