"""The install-file and run-script commands: exact text, and run for real in a sandbox."""
from __future__ import annotations

import os
import stat
import subprocess

import pytest

from components.render.files import render_install_file_command, render_run_script_command
from tests.render.netns import SUDO_STAND_IN


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


def test_run_script_command_with_the_ssh_client_text():
    """The one unquoted word: the login shell expands it (SSH_CLIENT_WORD)."""
    assert render_run_script_command("echo hi\n", ["a b"], ssh_client=True) == \
        "sudo -n bash -c 'echo hi\n' djscale 'a b' \"$SSH_CLIENT\""


@pytest.mark.parametrize("login_shell", ["sh", "bash"])
@pytest.mark.parametrize("ssh_client", ["198.51.100.7 50022 22", "2001:db8::7 50022 22",
                                        "$(touch pwned) `touch pwned` * ; x", ""])
def test_the_login_shell_hands_ssh_client_to_the_root_script_as_one_word(
        tmp_path, login_shell, ssh_client):
    """sshd runs the command line with the login shell (`$SHELL -c`): sh (dash) and bash
    expand "$SSH_CLIENT" to exactly one word, nothing in its value runs or globs, and the
    script gets it although sudo resets the environment (the stand-in does as sudo does)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text(SUDO_STAND_IN)
    (bin_dir / "sudo").chmod(0o755)
    (tmp_path / "some-file").write_text("")  # what `*` would expand to
    script = 'printf "%s|" "$#" "$1" "${SSH_CLIENT-unset}"'
    result = subprocess.run(
        [login_shell, "-c", render_run_script_command(script, ssh_client=True)],
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "SSH_CLIENT": ssh_client},
        cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"1|{ssh_client}|unset|"
    assert not (tmp_path / "pwned").exists()


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
