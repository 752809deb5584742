"""components/restore.py: maintenance on, the restore on the database host, maintenance off,
as commands given to a stand-in runner (the scripts themselves run for real in
tests/render/test_backups.py and tests/render/test_maintenance.py; end to end on the bed:
tests/testbed/test_75_backups.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from components import restore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ON, OFF, STATUS = (f"sudo -n /usr/local/sbin/djscale-maintenance {a}" for a in
                   ("on", "off", "status"))


class Hosts:
    """Records each command; answers from `answers` (command -> (status, stdout))."""

    def __init__(self, answers=None):
        self.calls: list[tuple[str, str]] = []
        self.answers = answers or {}

    def __call__(self, host: str, command: str, stream: bool) -> tuple[int, str]:
        self.calls.append((host, command))
        return self.answers.get(command, (0, "off\n" if command == STATUS else ""))


def test_maintenance_on_restore_then_off():
    hosts, said = Hosts(), []
    assert restore.restore(hosts, "latest", said.append) == 0
    assert hosts.calls == [("proxy", STATUS), ("proxy", ON),
                           ("db", "sudo -n /usr/local/sbin/djscale-restore latest"),
                           ("proxy", OFF)]
    assert said == ["djscale: restore done"]


def test_a_failed_restore_still_ends_maintenance_and_fails():
    key = "backups/django-20260102T030405Z.dump"
    command = f"sudo -n /usr/local/sbin/djscale-restore {key}"
    hosts, said = Hosts({command: (1, "")}), []
    assert restore.restore(hosts, key, said.append) == 1
    assert hosts.calls[-2:] == [("db", command), ("proxy", OFF)]
    assert said == ["djscale: restore FAILED (exit 1)"]


def test_maintenance_switched_on_before_stays_on():
    hosts, said = Hosts({STATUS: (0, "on since 2026-01-02T03:00:00Z\n")}), []
    assert restore.restore(hosts, "latest", said.append) == 0
    assert ("proxy", ON) not in hosts.calls and ("proxy", OFF) not in hosts.calls
    assert said[0] == ("djscale: maintenance mode is already on since 2026-01-02T03:00:00Z: "
                       "it stays on afterwards")


def test_nothing_is_restored_while_clients_could_still_write():
    hosts = Hosts({ON: (1, "")})
    assert restore.restore(hosts, "latest", lambda _: None) == 1
    assert [host for host, _ in hosts.calls] == ["proxy", "proxy"]  # never the database


def test_a_key_is_one_quoted_word():
    assert restore.restore_command("x; rm -rf /") == \
        "sudo -n /usr/local/sbin/djscale-restore 'x; rm -rf /'"


def test_list_only_lists():
    hosts = Hosts()
    assert restore.restore(hosts, "--list", lambda _: None) == 0
    assert hosts.calls == [("db", "sudo -n /usr/local/sbin/djscale-restore --list")]


def test_a_stack_without_backups_is_refused(capsys):
    assert restore.main(["--stack-file", str(FIXTURES / "stack_dbref.yaml")]) == 2
    assert "backups: this stack backs up no database" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        restore.main([])  # a stack is required
