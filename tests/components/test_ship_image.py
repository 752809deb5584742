"""components/ship_image.py: the deploy's `appK-image` step on the operator's machine, the
SSH private key in its request on stdin.

pulumi-command puts a failed command's stdout and stderr into the error, whatever `logging`
says (v1.2.1 provider/pkg/provider/local/commandOutputs.go, run), so the module must print
the key on no path. Each stage it can fail at runs here with the failure injected: a request
it cannot read, a key ssh-add refuses (the real ssh-agent and ssh-add), and, with a real key
held by the real agent, a stand-in `ssh` first on PATH failing the login, `docker save`,
`docker load` or the check after the load. Neither the key's text nor its base64 body is in
stdout, stderr or any `ssh` argument; the message says which stage failed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.render.stubs import calls, make_stubs

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "sha256:" + "ab" * 32

# The stand-in `ssh`: the remote command is its last argument. FAIL names the stage that
# fails; the agent the module started must be the one ssh gets (SSH_AUTH_SOCK), holding a key.
SSH = r"""
remote="${@: -1}"
ssh-add -l >/dev/null 2>&1 || { echo "stand-in ssh: no key in the agent" >&2; exit 97; }
case "$remote" in
    *"docker image inspect"*)
        [ "$FAIL" = login ] && { echo "deploy@host: Permission denied (publickey)." >&2; exit 255; }
        n=$(grep -c "docker image inspect" "$STUB_LOG")
        [ "$FAIL" = none ] && [ "$n" -gt 1 ] && exit 0
        exit 1 ;;
    *"docker save"*)
        [ "$FAIL" = save ] && { echo "Error response from daemon: No such image" >&2; exit 1; }
        echo "image-archive-bytes" ;;
    *"docker load"*)
        cat >/dev/null
        [ "$FAIL" = load ] && { echo "Error processing tar file: unexpected EOF" >&2; exit 1; }
        echo "Loaded image ID: $IMAGE" ;;
esac
exit 0
"""


def connection(host: str) -> dict:
    return {"host": host, "port": 22, "user": "deploy", "proxy": None,
            "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID9iDKygqTjLJTGNlrrfSNS7J7u4Nej213ePYwi3Q0or"}


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("key") / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True)
    return path.read_text()


def key_material(key: str) -> list[str]:
    """The key's text and every 16 characters of its base64 body (a partial print, wrapped
    or not, shows some)."""
    body = "".join(line.strip() for line in key.splitlines() if "PRIVATE KEY" not in line
                   and not line.startswith("#"))
    return [key.strip(), *(body[i:i + 16] for i in range(len(body) - 15))]


def ship(tmp_path: Path, stdin: str, fail: str) -> tuple[subprocess.CompletedProcess, Path]:
    """`python3 -m components.ship_image` as pulumi-command runs it: in the project
    directory, the request on stdin; the stand-in ssh first on PATH, no agent of the
    operator's."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    make_stubs(bin_dir, {"ssh": SSH})
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env.update(PATH=f"{bin_dir}:{os.environ['PATH']}", STUB_LOG=str(log), FAIL=fail,
               IMAGE=IMAGE)
    result = subprocess.run([sys.executable, "-m", "components.ship_image"], input=stdin,
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    return result, log


def request(key: str) -> str:
    return json.dumps({"image": IMAGE, "source": connection("192.0.2.21"),
                       "target": connection("192.0.2.22"), "key": key})


def assert_no_key(key: str, result: subprocess.CompletedProcess, log: Path) -> None:
    printed = result.stdout + result.stderr + "\n".join(calls(log))
    flat = printed.replace("\n", "")
    for material in key_material(key):
        assert material not in printed and material not in flat, "the key is in the output"


@pytest.mark.parametrize("fail, message", [
    ("login", "ssh deploy@192.0.2.22: deploy@host: Permission denied (publickey)."),
    ("save", "docker save on 192.0.2.21 failed: Error response from daemon: No such image"),
    ("load", "docker load on 192.0.2.22 failed: Error processing tar file: unexpected EOF"),
    ("after", f"192.0.2.22 does not hold {IMAGE} after the load"),
])
def test_a_failed_ship_prints_no_key(tmp_path, key, fail, message):
    result, log = ship(tmp_path, request(key), fail)
    assert result.returncode == 1, result
    assert result.stderr == f"djscale: shipping the app image failed: {message}\n"
    assert result.stdout == ""
    assert_no_key(key, result, log)


def test_a_ship_that_works_prints_no_key_either(tmp_path, key):
    """The stand-in proves the way: the agent holds the key, save feeds load."""
    result, log = ship(tmp_path, request(key), "none")
    assert (result.returncode, result.stderr) == (0, ""), result
    assert result.stdout == f"shipped {IMAGE[:19]} from 192.0.2.21 to 192.0.2.22\n"
    remote = [next(r for r in ("image inspect", "docker save", "docker load") if r in c)
              for c in calls(log)]
    # save and load run at once (one pipe): their stand-ins log in either order
    assert remote[0] == remote[3] == "image inspect" and len(remote) == 4
    assert sorted(remote[1:3]) == ["docker load", "docker save"], remote
    assert_no_key(key, result, log)


def test_a_key_ssh_add_refuses_is_not_printed(tmp_path, key):
    """The real ssh-add refuses a damaged key (a line of its body left out): its message
    names stdin, not the content."""
    lines = key.splitlines(keepends=True)
    damaged = "".join(lines[:2] + lines[3:])
    result, log = ship(tmp_path, request(damaged), "none")
    assert result.returncode == 1, result
    assert result.stderr.startswith("djscale: shipping the app image failed: "
                                    "ssh-add refused the key: ")
    assert calls(log) == []  # nothing was dialled
    assert_no_key(damaged, result, log)


@pytest.mark.parametrize("stdin, message", [
    ("not json " + "{key}", "Expecting value: line 1 column 1 (char 0)"),
    ('{{"key": {key_json}, "source": {{}}}}', "'image'"),
    ('{{"key": {key_json}, "image": "x", "source": {{}}, "target": {{}}, "extra": ', None),
])
def test_a_request_it_cannot_read_is_not_printed(tmp_path, key, stdin, message):
    text = stdin.format(key=key, key_json=json.dumps(key))
    result, log = ship(tmp_path, text, "none")
    assert result.returncode == 1, result
    assert result.stderr.startswith("djscale: shipping the app image failed: ")
    if message:
        assert result.stderr == f"djscale: shipping the app image failed: {message}\n"
    assert calls(log) == []
    assert_no_key(key, result, log)
