"""Where everything of the live test bed lives: names, addresses, state directories.

One user-defined Docker network with a fixed subnet; every bed host and service has a fixed
address on it. A host's private address is its address (one network: the hosts' firewalls do
the isolation). The machine itself is the network's gateway: it is the admin source for SSH.

The hosts run one Debian suite per bed (`bed_suite()`: bookworm or trixie); the pytest session
proves one bed per suite in `suites_to_prove()`, one after the other, on the same names and
addresses (only one bed is up at a time).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.support.dockerd import STATE_ROOT
from tests.support.rootfs import DEFAULT_SUITE, SUITES, check_suite

STATE_DIR = STATE_ROOT / "testbed"
STATE_FILE = STATE_DIR / "state.json"
PREFIX = "djstb"                       # every container, network and image of the bed
NETWORK = f"{PREFIX}-net"
BRIDGE = f"{PREFIX}0"                  # the network's bridge on the machine
SUBNET = "10.214.200.0/24"             # from the outer engine's pool, far from automatic ones
GATEWAY = "10.214.200.1"               # the machine: admin source for SSH
DOMAIN = "www.djscale.test"
SSH_USER = "deploy"
S3_BUCKET = "djscale-static"
S3_BACKUP_BUCKET = "djscale-backups"  # the database's backups (test_75)
S3_ACCESS_KEY_ID = "testbed-access-key"
S3_SECRET_KEY = "testbed-secret-key"   # moto accepts any credentials
REGISTRY_PORT = 5000
# The registry's port published on the machine's loopback for the outer engine's pushes:
# 0 lets Docker pick a free one (a fixed port failed a CI run when something else held it).
REGISTRY_PUSH_PORT = int(os.environ.get("DJSCALE_TESTBED_REGISTRY_PORT", "0"))
S3_PORT = 9000
APP_PORT = 8000

# Fixed addresses of the services (hosts of the program come after)
SERVICE_ADDRESSES = {
    "acme": "10.214.200.2",      # pebble :14000 (ACME) :15000 (roots) + challtestsrv
    "registry": "10.214.200.3",  # docker-registry :5000: where the program's images come from
    "s3": "10.214.200.4",        # moto server :9000: static files
    "client": "10.214.200.5",    # the internet
}
DB_ADDRESS = "10.214.200.10"
PROXY_ADDRESS = "10.214.200.11"
# A second stack's proxy (test_92_two_stacks: role "proxy2", started by that proof; `down`
# removes it with the rest, by label)
SECOND_PROXY_ADDRESS = "10.214.200.12"
APP_ADDRESS_BASE = 21          # app1 = .21, app2 = .22, ...


# What each suite's hosts run that the proofs check: Debian release, PostgreSQL major.
DEBIAN_RELEASES = {"bookworm": "12", "trixie": "13"}
POSTGRESQL_MAJORS = {"bookworm": "15", "trixie": "17"}


def bed_suite() -> str:
    """The Debian suite of the hosts (and of the proxy's nginx image) for `python -m
    tests.testbed up`: DJSCALE_TESTBED_SUITE, bookworm unless set."""
    return check_suite(os.environ.get("DJSCALE_TESTBED_SUITE", DEFAULT_SUITE))


def suites_to_prove() -> list[str]:
    """The suites the pytest session proves, in order: DJSCALE_TESTBED_SUITES
    (space or comma separated), every suite unless set."""
    raw = os.environ.get("DJSCALE_TESTBED_SUITES", " ".join(SUITES))
    suites = [check_suite(s) for s in raw.replace(",", " ").split()]
    if not suites:
        raise ValueError("DJSCALE_TESTBED_SUITES names no suite")
    return list(dict.fromkeys(suites))


def app_address(index: int) -> str:
    """Address of app server `index` (1-based)."""
    return f"10.214.200.{APP_ADDRESS_BASE + index - 1}"


def container_name(role: str) -> str:
    return f"{PREFIX}-{role}"


@dataclass
class BedState:
    """What `up` made, on disk, so that `down`/`status`/`deploy` work from another process."""

    app_count: int
    engine_host: str
    engine_owned: bool                  # the bed started the outer engine: `down` stops it
    suite: str = DEFAULT_SUITE          # Debian suite of the hosts and the nginx image
    containers: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)    # role -> image the stack pulls
    host_keys: dict[str, str] = field(default_factory=dict)  # address -> "ssh-ed25519 AAAA"
    saved_machine: dict[str, str] = field(default_factory=dict)  # ip_forward, FORWARD policy
    up_seconds: float = 0.0

    def save(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        STATE_FILE.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls) -> "BedState | None":
        if not STATE_FILE.exists():
            return None
        return cls(**json.loads(STATE_FILE.read_text()))


def host_roles(app_count: int) -> dict[str, str]:
    """The program's hosts: role -> address."""
    roles = {"db": DB_ADDRESS, "proxy": PROXY_ADDRESS}
    for i in range(1, app_count + 1):
        roles[f"app{i}"] = app_address(i)
    return roles


def ssh_key_path() -> Path:
    return STATE_DIR / "ssh" / "id_ed25519"


def host_docker_dir(role: str) -> Path:
    """The machine directory under a host's /var/lib/docker (overlay2 needs a real fs)."""
    return STATE_DIR / "hosts" / role / "var-lib-docker"
