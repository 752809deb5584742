"""The install-file and run-script commands: exact text, and run for real in a sandbox."""
from __future__ import annotations

import os
import stat
import subprocess

import pytest

from components.render.files import render_install_file_command, render_run_script_command


def test_install_file_command_text():
    assert render_install_file_command("/etc/djscale/app.env", "0600") == """\
sudo -n bash -c 'set -eu
target=/etc/djscale/app.env
dir=/etc/djscale
[ -d "$dir" ] || install -d -m 0755 "$dir"
umask 077
tmp=$(mktemp "$dir/.djscale.XXXXXX")
trap '"'"'rm -f "$tmp"'"'"' EXIT
cat > "$tmp"
chown root:root "$tmp"
chmod 0600 "$tmp"
mv -f "$tmp" "$target"' djscale"""


def test_run_script_command_text():
    assert render_run_script_command("echo 'hi'\n", ["a b"]) == \
        "sudo -n bash -c 'echo '\"'\"'hi'\"'\"'\n' djscale 'a b'"


@pytest.mark.parametrize("mode", ["0o644", "rw", "08888", "1"])
def test_bad_modes_are_refused(mode):
    with pytest.raises(ValueError):
        render_install_file_command("/etc/x", mode)


@pytest.mark.parametrize("path", ["relative/file", "/etc/dir/", "/etc/a\nb"])
def test_bad_paths_are_refused(path):
    with pytest.raises(ValueError):
        render_install_file_command(path)


def test_install_file_for_real(tmp_path):
    target = tmp_path / "new dir" / "it's secret.env"
    command = render_install_file_command(str(target), 0o640, "root", "daemon", sudo=False)
    content = "A=1\nB=$(not expanded) 'q' \"dq\"\n"
    subprocess.run(["sh", "-c", command], input=content, text=True, check=True)
    assert target.read_text() == content
    info = target.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert info.st_gid == 1  # daemon
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o755
    # Replacing keeps the directory clean (no temp files left) and swaps the content.
    subprocess.run(["sh", "-c", command], input="A=2\n", text=True, check=True)
    assert target.read_text() == "A=2\n"
    assert os.listdir(target.parent) == [target.name]


def test_install_file_failure_leaves_no_temp_file(tmp_path):
    target = tmp_path / "f"
    command = render_install_file_command(str(target), "0600", "no-such-user-djscale",
                                          sudo=False)
    result = subprocess.run(["sh", "-c", command], input="x", text=True, capture_output=True)
    assert result.returncode != 0
    assert os.listdir(tmp_path) == []
