"""Whatever the config rules admit, every renderer accepts (issue 9, item 10).

The renderers check their own input again (nginx `_word`, postgres `_hba_name`, files
`_mode_text`/`_absolute`, appenv `_line_value`, the firewall's addresses and ports, the
teardown's paths) and raise ValueError: inside `pulumi up` that is a traceback. So each stack
here is built from the most extreme values the config rules let through (longest names,
highest ports, every character a pattern allows), parsed by `parse_config` as any stack is,
and every item of every host's plan is rendered the way components/apply.py renders it, with
real-looking deploy values as well as the inspect command's placeholders: nothing may raise.
nginx's own parser checks the nginx.conf of the longest domain.

Values that come from no config key (paths, modes, container names) are constants of the
renderers, covered by their own tests.
"""
from __future__ import annotations

import json

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from components.config import SECRET_KEYS, parse_config
from components.config.rules import PLATFORMS
from components.plans import stack_plans
from components.plans.describe import host_files, inspect_values
from components.plans.items import File, Local, Step, Teardown, Upload, render_text
from components.render.app_image import PLATFORM_MACHINES
from components.render.files import render_install_file_command, render_run_script_command
from components.render.nginx import render_nginx_conf

KEYS = [  # real ed25519 public keys (ssh-keygen; private halves thrown away)
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID9iDKygqTjLJTGNlrrfSNS7J7u4Nej213ePYwi3Q0or",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKYGe9V/z0QQGoq7eaddGGuIuSm5yKzCH/CtwoFLnbFm",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN8+NO+UNlbUIzjgHhmMV/MUn9d5y5IQc+LpjHgPYsEv",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPiFQ2oeufbeSi9pY4+7n18YGzdV0UmTOysIytdZz5Jx",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFSUMFKddJAidHwfgktDSTkMV7vLcNJfW0XKHbXuWI5l",
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBII88cYsgLxFk7lVRt"
    "laOWBVmy8LpNITixaZ48lqLl0ITS49fJzos1hOr4q5yXsCmNkIpaPMbha356oQUHwuGMc=",
]
LONGEST_DOMAIN = ".".join(["a" * 63, "B" * 63, "c-9" + "d" * 60, "e" * 57 + "-x0z"])  # 253
# as many aliases as one certificate holds beside the domain, each of 253 characters
LONGEST_ALIASES = [".".join([f"n{i:02d}" + "q" * 60, "B" * 63, "c-9" + "d" * 60, "e" * 57 + "-x0z"])
                   for i in range(99)]
LONGEST_NAME = "a" + "-" * 61 + "z"  # 63: a host label
DIGEST = "sha256:" + "0123456789abcdef" * 4


def _pins(*addresses: str) -> dict[str, str]:
    return dict(zip(addresses, KEYS))


def widest() -> dict:
    """Every key at the far end of what its rule admits."""
    longest_host = ".".join(["d" * 63, "b" * 63, "x-" * 31 + "x", "y" * 61])  # 253
    hosts = (longest_host, "223.255.255.254", "1.0.0.1", "app-3.example.com",
             "proxy.example.com", "jump.example.org")
    return {
        "domain": LONGEST_DOMAIN,
        "domainAliases": LONGEST_ALIASES,
        "aliasMode": "redirect",
        "acme": {"email": "o'brien+ops.{x}|~#$%&*/=?^_`-1@mail-1.example.com",
                 "server": "https://ca-1.example.com:65535/acme/dir_v2~(x)!$&'*+,;=:@%41",
                 "expiryWarningDays": 365},
        "ssh": {"user": "_" + "z9_-" * 7 + "abc", "port": 65535,
                "hostKeys": _pins(*hosts),
                "bastion": {"address": hosts[5], "port": 1, "user": "j"}},
        "database": {"address": hosts[0], "privateAddress": "10.255.255.254",
                     "sshPort": 1, "name": "_" + "a9" * 31, "user": "u" + "_" * 62,
                     "port": 1, "postgresVersion": "17",
                     "allowedClients": ["192.168.255.254", "172.31.0.1", "10.0.0.200"],
                     # PostgreSQL's highest; the most workers that still fit its budget
                     "maxConnections": 262143},
        "appServers": [
            {"name": LONGEST_NAME, "address": hosts[1], "privateAddress": "223.255.255.254",
             "sshPort": 65535},
            {"name": "0", "address": hosts[2], "privateAddress": "1.0.0.1"},
            {"name": "app-3", "address": hosts[3], "privateAddress": "10.0.0.3"},
        ],
        "proxy": {"address": hosts[4], "privateAddress": "10.0.0.4", "sshPort": 2},
        "images": {"appBase": f"registry-1.example.com:65535/a/b_c/d__e--f:T_a.g-{'x' * 120}",
                   "nginx": f"localhost:5000/nginx@{DIGEST}",
                   "certbot": f"certbot/certbot:v2.11.0@{DIGEST}", "platform": "linux/riscv64"},
        "app": {"superuser": {"username": "a.b@c+d-e_f" + "\u00df" * 139,
                              "email": "admin+x@example.com"},
                "port": 65533, "workers": 43689, "debug": True, "logLevel": "CRITICAL",
                "extraAllowedHosts": [".example.com", "192.0.2.8", "x" * 63,
                                      "Upper.Example.COM"],
                "dockerfile": "Dockerfile",
                "envNames": {"dbUser": ["_" + "Z9" * 60, "a"], "dbSslMode": [],
                             "debug": "DEBUG"},
                "debugValues": {"whenTrue": "'\"$(x)`;|&<>*?!#~=" + "\u00e9" * 40,
                                "whenFalse": ""},
                "env": {"_" * 200: "", "A" + "b" * 199: "{\"k\": \"v w\"} $HOME `x` 'q' \\ %",
                        "N": 0}},
        "staticStorage": {"bucket": "a" + "-" * 61 + "z", "accessKeyId": "s.v_c-1@m+" * 12,
                          "endpointUrl": "https://s3-1.example.com:65535/path_(x)",
                          "region": "a-1", "pathStyle": True,
                          "customDomain": "cdn-1.example.com:65535/a/b_c~(d)",
                          "publicReadAcl": False},
        "firewall": {"adminCidrs": ["0.0.0.0/0", "255.255.255.255", "198.51.100.0/24"]},
        "backups": {"bucket": "b" + "-." * 30 + "z", "accessKeyId": "k.v_c-1@m+" * 12,
                    "prefix": "a_-." + "/x.y-z_" * 27 + "/",
                    "endpointUrl": "http://s-3.example.com:65535/s3_(x)", "region": "x-9",
                    "pathStyle": True, "schedule": "Monday..Sunday 2199-12-31 23:59:59 UTC",
                    "keepCount": 2**31, "keepDays": 36500, "encrypt": True},
        "maintenance": {"enabled": True, "retryAfter": 86400},
        "nginx": {"connectTimeout": "0", "readTimeout": "999999ms", "sendTimeout": 1,
                  "clientMaxBodySize": "0", "maxFails": 0, "failTimeout": "0s",
                  "upstreamKeepalive": 1_000_000, "proxyBuffering": False,
                  "nextUpstreamTimeout": "500ms", "hstsPreload": True,
                  "loginPaths": ["/", "/a-b_c.d~e@f:g+h/"]},
    }


def widest_served() -> dict:
    """The widest stack with its aliases served: every name in ALLOWED_HOSTS and
    CSRF_TRUSTED_ORIGINS (the env file's longest lines) and in the site's server_name."""
    return {**widest(), "aliasMode": "serve"}


def narrowest() -> dict:
    """One app server, the shortest names, everything else at its default."""
    return {
        "domain": "a.b",
        "acme": {"staging": True},
        "ssh": {"hostKeys": _pins("d.b", "a.b", "p.b")},
        "database": {"address": "d.b", "privateAddress": "10.0.0.1", "name": "d", "user": "u"},
        "appServers": [{"name": "a", "address": "a.b", "privateAddress": "10.0.0.2"}],
        "proxy": {"address": "p.b", "privateAddress": "10.0.0.3"},
        "app": {"superuser": {"username": "a", "email": "a@b.c"}},
        "staticStorage": {"bucket": "abc", "accessKeyId": "abc"},
        "firewall": {"adminCidrs": ["10.0.0.0/32"]},
        "backups": {"bucket": "abc", "accessKeyId": "abc", "schedule": "daily"},
    }


def database_elsewhere() -> dict:
    raw = narrowest()
    raw["database"] = {"stack": "o/p/s"}
    raw["ssh"] = {"hostKeys": _pins("a.b", "p.b")}
    del raw["backups"]  # that stack backs its database up
    return raw


SCENARIOS = {"widest": widest, "widest_served": widest_served, "narrowest": narrowest,
             "database_elsewhere": database_elsewhere}


# what the database host's TLS step prints (a real certificate, for a real PEM check)
CA_CERT = """-----BEGIN CERTIFICATE-----
MIIBjzCCATSgAwIBAgIUHP8KbIyOm9RafaC3KLzNEKCXUnkwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTAuMC40LjEwMB4XDTI2MTIwMTAzNTQyMloXDTM2MTEyODAz
NTQyMlowFDESMBAGA1UEAwwJMTAuMC40LjEwMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEfSuXUyHGmrWD+hJW6K5EjeJb4+R3scrUGfxvoj34pnqYGR6KS0XJiXGl
u7upQSTW44KqiuYwQl7Uh6sfHFTBU6NkMGIwHQYDVR0OBBYEFB6moxpdrRAd60iW
4Y63lnajxThhMB8GA1UdIwQYMBaAFB6moxpdrRAd60iW4Y63lnajxThhMA8GA1Ud
EwEB/wQFMAMBAf8wDwYDVR0RBAgwBocECgAECjAKBggqhkjOPQQDAgNJADBGAiEA
6mALWhLy9CLF3YlnikjdoO0ZwoQWc2nUPUVL177qCocCIQDfebzlZIlKDYim2GOA
tWzATmzjgZvOtnleVDREipQ06Q==
-----END CERTIFICATE-----
"""


def deploy_values(cfg) -> dict[str, object]:
    """Deploy values as the components have them: the database endpoint, generated secrets
    (RandomPassword: letters and digits), the S3 secret as AWS writes one, an image id."""
    db = cfg.database
    endpoint = ({"db_host": db.private_address, "db_port": db.port, "db_name": db.name,
                 "db_user": db.user} if db.host else
                {"db_host": "10.9.9.9", "db_port": 5432, "db_name": "django", "db_user": "django"})
    return {**endpoint, "db_password": "Aa0" * 21 + "z", "secret_key": "Zz9" * 21 + "a",
            "s3_secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "superuser_password": "Pp1" * 8, "app_image": DIGEST, "db_ca_cert": CA_CERT,
            "app_secrets": {name: "s" * 4096 for name in cfg.app_secret_names},
            "ssh_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            "backup_s3_secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\"'\\",
            "backup_passphrase": "a passphrase with 'quotes' and $signs",
            "slot_port": str(cfg.app.port + 1),  # the start step prints it
            **{f"port@{host.name}": str(cfg.app.port + 1) for host in cfg.app_servers}}


def render_as_deployed(item, values) -> None:
    """What components/apply.py makes of an item (the same renderer calls)."""
    if isinstance(item, Step):
        render_run_script_command(render_text(item.script, values))
        if item.undo:
            render_run_script_command(item.undo)
    elif isinstance(item, File):
        render_text(item.content, values)
        owner, group = item.owner.split(":")
        render_install_file_command(item.path, item.mode, owner, group)
        if item.activate:
            render_run_script_command(item.activate)
    elif isinstance(item, Teardown):
        render_run_script_command(item.script)
    elif isinstance(item, Local):
        json.loads(render_text(item.stdin, values))  # the request the ship module reads
    else:
        assert isinstance(item, Upload), item


# appSecrets: names as long as a rule admits (its values: deploy_values, 4096 characters)
APP_SECRETS = frozenset({"appSecrets." + "S" * 255, "appSecrets._"})


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_plan_renders_from_the_values_the_rules_admit(scenario):
    cfg = parse_config(SCENARIOS[scenario](), {*SECRET_KEYS, *APP_SECRETS}, check_files=False)
    assert len(cfg.app_secret_names) == 2
    plans = stack_plans(cfg)
    assert {plan.role for plan in plans} >= {"app", "proxy"}
    for plan in plans:
        for values in (deploy_values(cfg), inspect_values(cfg)):
            for item in plan.items:
                render_as_deployed(item, values)
        assert host_files(plan, inspect_values(cfg))  # the inspect command writes it too


def test_the_widest_stack_is_what_was_written():
    """Guard for the test itself: each extreme value passed the rules as written."""
    cfg = parse_config(widest(), SECRET_KEYS, check_files=False)
    assert len(cfg.domain) == 253 and cfg.domain == LONGEST_DOMAIN.lower()
    assert len(cfg.certificate_names) == 100
    assert {len(name) for name in cfg.domain_aliases} == {253}
    assert len(cfg.database.address) == 253
    assert cfg.app_servers[0].name == LONGEST_NAME and len(cfg.database.name) == 63
    assert len(cfg.static_storage.access_key_id) == 120
    assert len(cfg.app.superuser.username) == 150 and cfg.ssh.port == 65535


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_platform_the_config_admits_has_a_machine_to_check_for(platform):
    """The build script compares `uname -m` with the platform's machine name
    (app_image.PLATFORM_MACHINES[platform]): a platform the rule admits but the table lacks
    would be a KeyError inside `up`."""
    assert set(PLATFORM_MACHINES) == set(PLATFORMS)
    raw = narrowest()
    raw["images"] = {"platform": platform}
    cfg = parse_config(raw, SECRET_KEYS, check_files=False)
    for plan in stack_plans(cfg):
        for item in plan.items:
            render_as_deployed(item, deploy_values(cfg))


@pytest.fixture
def scratch():
    """A directory nginx's unprivileged workers can traverse (tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="djscale-bounds-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("scenario", ["widest", "widest_served"])
@pytest.mark.parametrize("tls", [False, True], ids=["http-only", "tls"])
def test_nginx_accepts_the_widest_config(scratch, tls, scenario):
    """The longest domain (253 characters) and 99 aliases as long as server_name, the
    extreme timeouts and sizes: Debian's nginx 1.22 parses the result (`nginx -t`, in a
    private network namespace)."""
    cfg = parse_config(SCENARIOS[scenario](), SECRET_KEYS, check_files=False)
    live = scratch / "letsencrypt" / "live" / cfg.domain
    live.mkdir(parents=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=bounds",
                    "-addext", f"subjectAltName=DNS:{cfg.domain}",
                    "-keyout", str(live / "privkey.pem"), "-out", str(live / "fullchain.pem")],
                   check=True, capture_output=True)
    (scratch / "webroot").mkdir()
    conf = scratch / "nginx.conf"
    conf.write_text(render_nginx_conf(
        cfg, [host.private_address for host in cfg.app_servers], tls=tls,
        letsencrypt_dir=str(scratch / "letsencrypt"), webroot=str(scratch / "webroot"),
        pid_path=str(scratch / "nginx.pid"), error_log=str(scratch / "error.log"),
        access_log=str(scratch / "access.log"),
        legacy_nginx=True))  # this machine's nginx 1.22 (the production form: on the bed)
    result = subprocess.run(["unshare", "--net", "nginx", "-t", "-c", str(conf),
                             "-p", str(scratch), "-e", str(scratch / "error.log")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
