"""The bed itself, before any deployment: hosts behave like small Debian servers."""
from __future__ import annotations

import json

from . import acme, layout


def test_deploy_user_logs_in_over_ssh_with_the_bed_key_and_sudo_works(bed):
    for role in bed.roles:
        out = bed.ssh(role, "hostname; id -un; sudo -n id -u").stdout.split()
        assert out == [role, layout.SSH_USER, "0"], f"{role}: {out}"


def test_systemd_is_pid_1_and_the_host_keys_are_pinned(bed):
    for role, address in bed.roles.items():
        assert bed.ssh(role, "ps -o comm= -p 1").stdout.strip() == "systemd", role
        key = bed.run_in(role, "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub").stdout
        assert bed.state.host_keys[address] == key.strip(), role
    # every host made its own host key at first boot
    assert len(set(bed.state.host_keys.values())) == len(bed.roles)


def test_every_host_runs_the_bed_suite(bed):
    suite = bed.state.suite
    for role in bed.roles:
        release = bed.ssh(role, ". /etc/os-release; echo $VERSION_ID $VERSION_CODENAME").stdout
        assert release.split() == [layout.DEBIAN_RELEASES[suite], suite], f"{role}: {release}"


def test_apt_reaches_the_debian_mirror_from_a_host(bed):
    out = bed.sudo("db", "apt-get update -q >/dev/null && apt-cache policy postgresql",
                   timeout=300).stdout
    assert f"Candidate: {layout.POSTGRESQL_MAJORS[bed.state.suite]}" in out, out


def test_ufw_works_inside_a_host(bed):
    """ufw filters the host's own traffic: with SSH allowed from the machine only, the
    client's connection fails and the machine's works; reset afterwards (a bare host)."""
    db = bed.address("db")
    assert bed.tcp_open("client", db, 22)
    bed.run_in("db", f"ufw allow from {layout.GATEWAY} to any port 22 proto tcp >/dev/null && "
               "ufw --force enable >/dev/null")
    try:
        assert "Status: active" in bed.run_in("db", "ufw status").stdout
        assert not bed.tcp_open("client", db, 22)
        assert bed.ssh("db", "echo ok").stdout.strip() == "ok"
    finally:
        bed.run_in("db", "ufw --force reset >/dev/null && ufw --force disable >/dev/null; "
                   "rm -f /etc/ufw/*.rules.[0-9]*")
    assert bed.tcp_open("client", db, 22)


def test_pebble_answers_over_its_listener_certificate(bed):
    root = bed.fetch_pebble_root()
    assert root.startswith("-----BEGIN CERTIFICATE-----")
    directory = bed.run_in("client", f"curl -fsS --cacert /tmp/bed-ca.pem "
                           f"{acme.directory_url()}").stdout
    assert "newOrder" in json.loads(directory)


def test_the_registry_serves_the_program_images_to_a_host(bed):
    catalog = bed.run_in("client", f"curl -fsS http://{layout.SERVICE_ADDRESSES['registry']}:"
                         f"{layout.REGISTRY_PORT}/v2/_catalog").stdout
    repos = set(json.loads(catalog)["repositories"])
    assert {"djscale/app-base", "djscale/nginx", "djscale/certbot"} <= repos
    for role in ("app-base", "nginx", "certbot"):
        assert bed.state.images[role].startswith(layout.SERVICE_ADDRESSES["registry"])
    assert ":trixie-" in bed.state.images["nginx"]  # nginx >= 1.25.1 on every bed (http2 on;)


def test_the_s3_server_has_the_bucket(bed):
    out = bed.run_in("client", f"curl -fsS http://{layout.SERVICE_ADDRESSES['s3']}:"
                     f"{layout.S3_PORT}/").stdout
    assert layout.S3_BUCKET in out


def test_the_stack_file_describes_the_bed(bed):
    import yaml

    from .bed import STACK_FILE

    config = yaml.safe_load(STACK_FILE.read_text())["config"]
    assert config["djscale:proxy"]["address"] == layout.PROXY_ADDRESS
    assert [s["address"] for s in config["djscale:appServers"]] == \
        [bed.address(r) for r in bed.apps]
    assert config["djscale:firewall"]["adminCidrs"] == [f"{layout.GATEWAY}/32"]
    assert "staticStorageSecretKey" not in STACK_FILE.read_text().split("# Removed")[1]


def test_the_stack_file_is_a_valid_stack_config(bed):
    """What `pulumi up --stack testbed` would read passes the program's own validation
    (with the key file check), given the secret it lists."""
    import yaml

    from components.config import parse_config

    from .bed import STACK_FILE

    config = yaml.safe_load(STACK_FILE.read_text())["config"]
    raw = {key.split(":", 1)[1]: value for key, value in config.items()}
    cfg = parse_config(raw, secrets_present=frozenset({"staticStorageSecretKey",
                                                       "backupStorageSecretKey"}))
    assert [h.address for h in cfg.app_servers] == [bed.address(r) for r in bed.apps]
    assert cfg.acme.directory_url.startswith(f"https://{layout.SERVICE_ADDRESSES['acme']}:")

