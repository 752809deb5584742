"""Commands that put content on a server: the content always arrives on stdin.

`remote.Command(create=render_install_file_command(...), stdin=content)` installs a file
without the content ever appearing on a command line, and atomically: a temp file in the
target directory, created under umask 077, gets owner and mode before it is renamed over
the target. A reader never sees a half-written or briefly world-readable file.
"""
from __future__ import annotations

import posixpath
import re
import shlex
from typing import Sequence, Union

_MODE = re.compile(r"0?[0-7]{3,4}")


def _mode_text(mode: Union[str, int]) -> str:
    text = format(mode, "04o") if isinstance(mode, int) else mode
    if not _MODE.fullmatch(text):
        raise ValueError(f"file mode {mode!r} is not an octal mode like '0644'")
    return text if len(text) == 4 else "0" + text


def _absolute(path: str) -> str:
    if not path.startswith("/") or path.endswith("/") or "\n" in path:
        raise ValueError(f"{path!r} is not an absolute file path")
    return posixpath.normpath(path)


# The one word of a command line that is not quoted by us: the SSH session's client address
# ("address port port"), for a script that must know where the deploy connects from (the
# firewall's lockout check). sshd sets SSH_CLIENT in the session's environment and runs the
# command line with the user's login shell (`$SHELL -c <line>`); sudo then resets the
# environment, so the root script can only get it as an argument that the login shell
# expands. In double quotes, bash and sh (dash) alike expand it to exactly one word and do
# nothing more with its value (no splitting, no globbing, no second expansion), and the
# value comes from sshd, not from the network peer's choosing. An unset variable is an
# empty word: the script refuses to go on without it.
SSH_CLIENT_WORD = '"$SSH_CLIENT"'


def render_run_script_command(script: str, args: Sequence[str] = (), *, sudo: bool = True,
                              ssh_client: bool = False) -> str:
    """The command line that runs `script` with bash (as root via `sudo -n`), stdin untouched.

    The script travels as one quoted argument, so the command's stdin stays free for data
    (a password, a file's content). With `ssh_client`, the login shell's `$SSH_CLIENT` is
    the script's last argument (after `args`; see SSH_CLIENT_WORD).
    """
    words = ["bash", "-c", script, "djscale", *args]
    if sudo:
        words = ["sudo", "-n", *words]
    line = " ".join(shlex.quote(w) for w in words)
    return f"{line} {SSH_CLIENT_WORD}" if ssh_client else line


def render_install_file_command(path: str, mode: Union[str, int] = "0644", owner: str = "root",
                                group: str = "root", *, sudo: bool = True) -> str:
    """A command that installs its stdin at `path` atomically with owner, group and mode.

    The parent directory is created (0755) if missing; an existing one is left as it is.
    """
    path = _absolute(path)
    inner = "\n".join([
        "set -eu",
        f"target={shlex.quote(path)}",
        f"dir={shlex.quote(posixpath.dirname(path))}",
        '[ -d "$dir" ] || install -d -m 0755 "$dir"',
        "umask 077",
        'tmp=$(mktemp "$dir/.djscale.XXXXXX")',
        "trap 'rm -f \"$tmp\"' EXIT",
        'cat > "$tmp"',
        f'chown {shlex.quote(owner + ":" + group)} "$tmp"',
        f'chmod {_mode_text(mode)} "$tmp"',
        'mv -f "$tmp" "$target"',
    ])
    return render_run_script_command(inner, sudo=sudo)
