"""A host that answers with another SSH host key is refused (issue 9, item 1).

One app server gets new host keys (as a reinstalled machine, or one answering in its place,
would have); a deploy that has something to run there fails naming that host's step and
address, and nothing runs on it. With its original keys back, the next deploy goes through,
so the proofs after this one start from the bed as it was.

A deploy with nothing to do connects to no host (pulumi-command connects only to run a
command), so the proof changes `app.logLevel`: every app server's env file then changes.
The check itself is the stand-in engine's (tests/testbed/engine/command.py: the pinned key
as the only known host, StrictHostKeyChecking=yes, HostKeyAlgorithms = its type), as
pulumi-command's is ssh.FixedHostKey with the pinned key.
"""
from __future__ import annotations

import pytest

from .bed import stack_values
from .deploy import deploy_bed
from .hosts import wait_until

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)

SAVED = "/root/djscale-proof-host-keys"  # the original keys, inside the host meanwhile
SWAP = f"""set -e
rm -rf {SAVED}; mkdir -m 700 {SAVED}
cp -a /etc/ssh/ssh_host_* {SAVED}/
rm -f /etc/ssh/ssh_host_*
ssh-keygen -A >/dev/null
systemctl restart ssh
"""
RESTORE = f"""set -e
test -e {SAVED}/ssh_host_ed25519_key
rm -f /etc/ssh/ssh_host_*
cp -a {SAVED}/ssh_host_* /etc/ssh/
rm -rf {SAVED}
systemctl restart ssh
"""
HOST_KEY = "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub"


def test_a_host_with_another_host_key_is_refused_by_name(bed, deployed):
    app = bed.apps[-1]
    address = bed.address(app)
    pinned = bed.state.host_keys[address]

    def env_file() -> str:
        return bed.run_in(app, "sha256sum /etc/djscale/app.env").stdout

    before = env_file()
    values = stack_values(bed.state)

    bed.run_in(app, SWAP)  # docker exec: no SSH involved
    try:
        assert bed.run_in(app, HOST_KEY).stdout.strip() != pinned
        with pytest.raises(Exception) as failure:
            deploy_bed(changes={"app": {**values["app"], "logLevel": "DEBUG"}})
        message = str(failure.value)
        assert "host key verification failed" in message, message[:3000]
        assert address in message, message[:3000]
        assert f"'{app}-" in message, message[:3000]  # a step of that host, by name
        assert env_file() == before  # nothing ran there
    finally:
        bed.run_in(app, RESTORE)
    assert bed.run_in(app, HOST_KEY).stdout.strip() == pinned
    # the bed's own known_hosts pins the original key too: SSH works again
    wait_until(f"{app}: ssh with the original host key",
               lambda: bed.ssh(app, "true", check=False).returncode == 0, 30)

    deploy_bed()  # the bed's config again: every host, this one included, takes it
    assert env_file() == before
