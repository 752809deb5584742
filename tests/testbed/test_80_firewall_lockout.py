"""The firewall step cannot lock the operator out (issue 9, item 2), on the bed: the deployer
is the machine (layout.GATEWAY, the bed's only admin source). A stack whose
`firewall.adminCidrs` leaves it out fails at the first firewall step, naming the key and the
address, and changes nothing: SSH keeps working. The address reaches the root script through
the SSH user's login shell (`"$SSH_CLIENT"`): with `sh` as that shell a firewall change
deploys too. A normal deploy then puts everything back.

Written for the bed; run with `pytest -m testbed tests/testbed` (not run where this was
written: the bed's engine and hosts were in use)."""
from __future__ import annotations

import pytest

from . import layout
from .deploy import deploy_bed

OUTSIDE = "192.0.2.0/24"  # a network the machine is not in


def _firewall(bed) -> dict[str, str]:
    """Everything of each host's firewall that a refused step must leave as it was. Docker's
    own DOCKER chain is left out: its rules name the running containers' addresses, which a
    release changes (the new slot's container starts beside the old one, so it gets another
    address)."""
    return {role: bed.sudo(role, "ufw status verbose; ufw show added; "
                                 "iptables -S | grep -v -e '^-A DOCKER '; ip6tables -S; "
                                 "cat /etc/ufw/user.rules /etc/ufw/user6.rules "
                                 "/etc/ufw/after.rules /etc/default/ufw").stdout
            for role in bed.roles}


def _admin_cidrs(*cidrs: str) -> dict:
    return {"firewall": {"adminCidrs": list(cidrs)}}


def _login_shell(bed, shell: str) -> None:
    for role in bed.roles:
        bed.run_in(role, f"usermod -s {shell} {layout.SSH_USER}")


def test_admin_networks_without_the_deployer_change_nothing(bed, deployed):
    before = _firewall(bed)
    with pytest.raises(Exception) as failure:
        deploy_bed(changes=_admin_cidrs(OUTSIDE))
    message = str(failure.value)
    assert "-firewall'" in message, message[:3000]  # a firewall step, named
    assert (f"this deploy connects from {layout.GATEWAY}, which firewall.adminCidrs "
            f"({OUTSIDE}) does not include") in message, message[-3000:]
    assert "Nothing was changed." in message

    assert _firewall(bed) == before
    for role in bed.roles:
        assert bed.ssh(role, "echo ok").stdout.strip() == "ok", role

    deploy_bed()  # the stack as it was: nothing to do, nothing fails
    assert _firewall(bed) == before
    for role in bed.roles:
        assert bed.ssh(role, "echo ok").stdout.strip() == "ok", role


def test_a_login_shell_of_sh_hands_the_address_over_too(bed, deployed):
    """Every firewall step runs again (a new admin network) with `sh` as the SSH user's login
    shell: refused without the deployer, applied with it; then bash and the stack as it was."""
    before = _firewall(bed)
    _login_shell(bed, "/bin/sh")
    try:
        assert bed.ssh("db", 'echo "$0"').stdout.strip() == "sh"
        with pytest.raises(Exception) as failure:
            deploy_bed(changes=_admin_cidrs(OUTSIDE))
        assert f"this deploy connects from {layout.GATEWAY}," in str(failure.value)
        assert _firewall(bed) == before

        deploy_bed(changes=_admin_cidrs(f"{layout.GATEWAY}/32", OUTSIDE))
        for role in bed.roles:
            added = bed.sudo(role, "ufw show added").stdout
            assert f"allow from {OUTSIDE} to any port 22 proto tcp" in added, (role, added)
            assert bed.ssh(role, "echo ok").stdout.strip() == "ok", role
    finally:
        _login_shell(bed, "/bin/bash")
    deploy_bed()
    assert _firewall(bed) == before
