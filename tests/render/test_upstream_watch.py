"""The upstream watcher's unit and its enable/disable step: exact text, systemd's own
verification of the unit, and the step run against a stand-in systemctl (what it waits for,
what it reports). The program itself: tests/components/test_upstream_watch.py."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from components.config import NginxConfig
from components.render import upstream_watch
from tests.render.conftest import assert_golden, check_shell, make_config, replace


def test_unit_text_and_systemd_accepts_it(tmp_path):
    unit = upstream_watch.render_watch_service()
    assert unit == """\
# managed by djscale, do not edit
[Unit]
Description=djscale: probe the app servers, refuse nginx's connections to one that is gone
Documentation=file:///usr/local/lib/djscale/djscale-upstream-watch
After=network-online.target docker.service
Wants=network-online.target

[Service]
Type=simple
ExecStart=/usr/bin/python3 /usr/local/lib/djscale/djscale-upstream-watch --conf /etc/djscale/nginx/nginx.conf --state /run/djscale/upstream-watch.json --interval 1 --timeout 0.5 --failures 2 --recoveries 2
# The program removes its rules when it stops; a watcher killed outright leaves none either.
ExecStopPost=/usr/bin/python3 /usr/local/lib/djscale/djscale-upstream-watch --clear
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
"""
    program = tmp_path / "watch"
    program.write_text(upstream_watch.render_watch_program())
    (tmp_path / "djscale-upstream-watch.service").write_text(
        upstream_watch.render_watch_service(str(program)))
    result = subprocess.run(["systemd-analyze", "verify",
                             str(tmp_path / "djscale-upstream-watch.service")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert upstream_watch.render_watch_program().startswith(
        "#!/usr/bin/env python3\n# managed by djscale, do not edit\n")


def test_enable_and_disable_scripts(tmp_path):
    off = replace(make_config(), nginx=NginxConfig(host_checks=False))
    for name, script in (("upstream-watch-enable.sh",
                          upstream_watch.render_enable_watch_script(make_config())),
                         ("upstream-watch-disable.sh",
                          upstream_watch.render_disable_watch_script())):
        assert_golden(name, script)
        check_shell(script, tmp_path)
    assert upstream_watch.render_enable_watch_script(off) == \
        upstream_watch.render_disable_watch_script()


def _run(script: str, tmp_path: Path, writes_state: bool) -> subprocess.CompletedProcess:
    """The step with systemctl/journalctl stood in: `restart` writes the state file (the
    watcher's first round) when `writes_state`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    state = tmp_path / "state.json"
    (bin_dir / "systemctl").write_text(
        "#!/bin/sh\necho \"systemctl $*\" >> \"$LOG\"\n"
        + (f"[ \"$1\" = restart ] && echo '{{\"out\": []}}' > {state}\n" if writes_state else "")
        + "exit 0\n")
    (bin_dir / "journalctl").write_text("#!/bin/sh\necho 'journal: Traceback ...'\n")
    for tool in ("systemctl", "journalctl"):
        (bin_dir / tool).chmod(0o755)
    script = script.replace(upstream_watch.WATCH_STATE_PATH, str(state))
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", LOG=str(tmp_path / "log"))
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          timeout=60)


def test_the_enable_step_waits_for_a_round_of_probes_and_says_so_when_none_comes(tmp_path):
    script = upstream_watch.render_enable_watch_script(make_config())
    ok = _run(script, tmp_path, writes_state=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == 'djscale: djscale-upstream-watch.service running: {"out": []}\n'
    assert (tmp_path / "log").read_text().splitlines()[:3] == [
        "systemctl daemon-reload", "systemctl enable djscale-upstream-watch.service",
        "systemctl restart djscale-upstream-watch.service"]
    (tmp_path / "state.json").unlink()
    # the same step, waiting 0.5 s instead of 10 (the message is the step's own)
    failed = _run(script.replace("$(seq 100)", "$(seq 5)"), tmp_path, writes_state=False)
    assert failed.returncode == 1
    assert failed.stderr == ("djscale: djscale-upstream-watch.service did not complete a "
                             "round of probes in 10 s:\njournal: Traceback ...\n")
