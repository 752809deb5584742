"""Containers run by script (components/render/containers.py): exact text, and the scripts
run for real against a Docker engine the tests start: a first start, a no-op re-run, a
change of settings, leftovers of a failed run, a new container that never gets healthy
(the previous one comes back), an interrupted run, and the teardown. The app's two slots
(start-slot, retire-slot): a release beside the running one, a re-run that starts nothing,
a failed release that never touches the running one, the old slot drained of an in-flight
request before it stops, a start that sees the app ready before Docker's first check, and
a container of djscale before slots."""
from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
import uuid
from dataclasses import replace

import pytest

from components.render.app_image import render_build_image_script
from components.render.containers import (ContainerSpec, Healthcheck, Port, SlotSpec,
                                          render_retire_slot_script, render_run_container_script,
                                          render_start_slot_script, render_teardown_script,
                                          settings_hash)
from tests.render.conftest import make_config
from tests.render.conftest import assert_golden, check_shell  # noqa: E402


def _app_slots() -> SlotSpec:
    from components.plans.app_server import app_slots
    cfg = make_config()
    slots = app_slots(cfg, cfg.app_servers[0])
    return replace(slots, container=replace(slots.container, image="sha256:feed"))


def _app_spec() -> ContainerSpec:
    return _app_slots().container


def test_app_slot_scripts(tmp_path):
    start = render_start_slot_script(_app_slots())
    assert_golden("start-slot-app.sh", start)
    check_shell(start, tmp_path)
    retire = render_retire_slot_script(_app_slots(), _app_slots().ports[1])
    assert_golden("retire-slot-app.sh", retire)
    check_shell(retire, tmp_path)
    with pytest.raises(ValueError, match="neither of the app's ports"):
        render_retire_slot_script(_app_slots(), 1234)


def test_nginx_container_script(tmp_path):
    from components.plans.proxy import nginx_container
    script = render_run_container_script(nginx_container(make_config()))
    assert_golden("run-container-nginx.sh", script)
    check_shell(script, tmp_path)


def test_teardown_script(tmp_path):
    script = render_teardown_script("djscale-app", 30, files=("/etc/djscale/app.env",))
    assert_golden("teardown-app.sh", script)
    check_shell(script, tmp_path)
    with pytest.raises(ValueError, match="only djscale's own files"):
        render_teardown_script("x", files=("/etc/passwd",))


def test_build_image_script(tmp_path):
    script = render_build_image_script(tag="djscale-app:0123", context="/var/lib/djscale/u/a",
                                       platform="linux/amd64", base_image="python:3.12-slim")
    assert_golden("build-image.sh", script)
    check_shell(script, tmp_path)


def test_a_healthcheck_timeout_timeout1_cannot_read_is_refused():
    spec = replace(_app_spec(), healthcheck=Healthcheck("true", timeout="1m30s"))
    with pytest.raises(ValueError, match="healthcheck timeout '1m30s'"):
        render_run_container_script(spec)
    assert "timeout 2m docker exec" in render_run_container_script(
        replace(spec, healthcheck=Healthcheck("true", timeout="2m")))


def test_every_setting_changes_the_settings_label():
    spec = _app_spec()
    changed = [replace(spec, image="sha256:other"), replace(spec, stop_timeout=5),
               replace(spec, healthcheck=replace(spec.healthcheck, retries=9)),
               replace(spec, ports=(Port("10.0.0.9", 8000, 8000),)),
               replace(spec, command=("gunicorn",)), replace(spec, restart="always"),
               replace(spec, env_file="/etc/other.env"),
               replace(spec, hashed_files=("/etc/djscale/other.pem",)),
               replace(spec, volumes=())]
    hashes = {settings_hash(s) for s in changed}
    assert len(hashes) == len(changed) and settings_hash(spec) not in hashes


def test_the_label_holds_the_content_of_the_env_file_and_of_the_files_mounted_alone(tmp_path):
    """A changed database certificate re-creates the app container like a changed env file:
    a file bind-mounted alone keeps showing the inode it had when the container started, so
    the file installed anew (renamed over the old one) would never reach a running one.
    The script runs with a stand-in `docker` that records the `docker run` it is asked for."""
    import hashlib

    from tests.render.stubs import make_stubs, run_sandboxed

    env_file, ca = tmp_path / "app.env", tmp_path / "db-ca.pem"
    spec = replace(_app_spec(), env_file=str(env_file), hashed_files=(str(ca),))
    assert spec.volumes and spec.hashed_files != _app_spec().hashed_files
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    make_stubs(bin_dir, {"docker": 'case "$1 $2" in "container inspect") exit 1 ;; esac'})

    def label(ca_text: str) -> str:
        env_file.write_text("A=1\n")
        ca.write_text(ca_text)
        log.unlink(missing_ok=True)
        run_sandboxed(render_run_container_script(spec), bin_dir, log)
        (run,) = [line for line in log.read_text().splitlines() if line.startswith("docker run")]
        value = run.split("--label djscale.settings=")[1].split()[0]
        digest = hashlib.sha256(("A=1\n" + ca_text).encode()).hexdigest()[:16]
        assert value == f"{settings_hash(spec)}-{digest}"
        return value

    first = label("CERT ONE\n")
    assert label("CERT ONE\n") == first
    assert label("CERT TWO\n") != first


# A stand-in `docker` for one script run: records each call (one argument per line, calls
# separated by a blank line), knows no image until one is pulled, then runs containers that
# are immediately "running" without a healthcheck.
DOCKER_STUB = r"""#!/usr/bin/env bash
{ printf '%s\n' "$@"; echo; } >> "$DOCKER_LOG"
case "$1 $2" in
  "image inspect") grep -qxF -- "$3" "$PULLED" ;;
  "pull --quiet") echo "$3" >> "$PULLED" ;;
  "container inspect")
    name=${!#}
    [ -e "$STATE/$name" ] || exit 1
    case "$*" in
      *State.Status*) echo "running none" ;;
      *djscale.settings*) cat "$STATE/$name" ;;
      *) echo "stub-$name" ;;
    esac ;;
  "container ls") ;;
  run\ --detach)
    for arg; do case "$arg" in djscale.settings=*) echo "${arg#*=}" > "$STATE/$4" ;; esac; done ;;
  *) ;;
esac
"""


def test_an_image_pinned_by_digest_is_pulled_and_run_by_that_exact_reference(tmp_path):
    """`name:tag@sha256:...` reaches `docker image inspect`, `docker pull` and `docker run`
    as one unchanged argument (Docker resolves it by the digest: the daemon's reference
    store drops the tag of a tag+digest reference, moby reference/store.go Get, and the
    client pulls `fromImage=name, tag=<digest>`, client/image_pull.go)."""
    from components.plans.proxy import nginx_container
    digest = "sha256:" + "0123456789abcdef" * 4
    reference = f"nginx:1.30@{digest}"
    cfg = make_config(images=replace(make_config().images, nginx=reference))
    spec = replace(nginx_container(cfg), healthy_within=5)
    assert spec.image == reference and spec.pull
    script = render_run_container_script(spec)
    assert f"image=nginx:1.30@{digest}\n" in script
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    (bin_dir / "docker").write_text(DOCKER_STUB)
    (bin_dir / "docker").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "DOCKER_LOG": str(tmp_path / "calls"),
           "PULLED": str(tmp_path / "pulled"), "STATE": str(state)}
    (tmp_path / "pulled").write_text("")
    for run in (1, 2):  # the second run finds the image pulled by the first
        result = subprocess.run(["bash", "-c", script], env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        calls = [call.split("\n") for call in
                 (tmp_path / "calls").read_text().strip().split("\n\n")]
        (tmp_path / "calls").unlink()
        pulls = [call for call in calls if call[0] == "pull"]
        assert ["image", "inspect", reference] in calls
        assert pulls == ([["pull", "--quiet", reference]] if run == 1 else [])
        runs = [call for call in calls if call[:2] == ["run", "--detach"]]
        assert (len(runs), runs[0][-6:] if runs else None) == (
            (1, [reference, "nginx", "-g", "daemon off;", "-c", "/etc/djscale/nginx/nginx.conf"])
            if run == 1 else (0, None))  # the second run: the same settings already run
    assert (tmp_path / "pulled").read_text() == f"{reference}\n"


# --- for real ---------------------------------------------------------------------------

SERVER = r'''
import http.server, os, socketserver
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = os.environ.get("HEALTHY", "yes") == "yes"
        self.send_response(200 if ok else 503)
        self.end_headers()
        self.wfile.write(os.environ.get("VERSION", "?").encode())
    def log_message(self, *args):
        pass
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer(("0.0.0.0", 8000), Handler).serve_forever()
'''
HEALTH = ("python3 -c 'import urllib.request; "
          "urllib.request.urlopen(\"http://127.0.0.1:8000/\", timeout=2)'")


@pytest.fixture(scope="module")
def base_image(docker_engine):
    from tests.support.rootfs import ensure_base_image
    return ensure_base_image(docker_engine, "djscale-test/engine-app", ["python3"])


@pytest.fixture(scope="module")
def engine(docker_engine, base_image, tmp_path_factory):
    base = base_image
    context = tmp_path_factory.mktemp("ctx")
    (context / "server.py").write_text(SERVER)
    (context / "Dockerfile").write_text(f"FROM {base}\nCOPY server.py /server.py\n"
                                        'CMD ["python3", "/server.py"]\n')
    docker_engine.docker("build", "-t", "djscale-test/run-container:1", str(context))
    yield docker_engine
    docker_engine.docker("image", "rm", "-f", "djscale-test/run-container:1", check=False)


@pytest.fixture
def box(engine, tmp_path):
    """A unique container name, an env file, and a way to run scripts against the engine."""
    name = f"djscale-test-{uuid.uuid4().hex[:8]}"
    env_file = tmp_path / "app.env"
    env_file.write_text("VERSION=1\nHEALTHY=yes\n")
    spec = ContainerSpec(name=name, image="djscale-test/run-container:1",
                         env_file=str(env_file),
                         healthcheck=Healthcheck(HEALTH, interval="1s", timeout="2s",
                                                 retries=2, start_period="2s"),
                         healthy_within=20, stop_timeout=2)

    def run(script: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", script], env=engine.env(), capture_output=True,
                              text=True, timeout=120)

    def inspect(container: str):
        result = engine.docker("container", "inspect", container, check=False)
        return json.loads(result.stdout)[0] if result.returncode == 0 else None

    yield {"spec": spec, "env_file": env_file, "run": run, "inspect": inspect, "name": name}
    run(render_teardown_script(name, 2))


@pytest.mark.docker
def test_start_then_rerun_is_a_no_op_then_a_change_recreates(box):
    run, inspect, name = box["run"], box["inspect"], box["name"]
    script = render_run_container_script(box["spec"])
    first = run(script)
    assert first.returncode == 0, first.stderr
    started = inspect(name)
    # ready: Docker's own first check (1 s) or the script's run of the same command before it
    assert started["State"]["Running"]
    assert started["State"]["Health"]["Status"] in ("starting", "healthy")
    assert started["Config"]["Labels"]["djscale.settings"].startswith(settings_hash(box["spec"]))
    assert "VERSION=1" in started["Config"]["Env"]  # from the env file, not the command line

    again = run(script)
    assert again.returncode == 0 and "already runs these settings" in again.stderr
    assert inspect(name)["Id"] == started["Id"]

    box["env_file"].write_text("VERSION=2\nHEALTHY=yes\n")  # a rotated secret, say
    changed = run(script)
    assert changed.returncode == 0, changed.stderr
    now = inspect(name)
    assert now["Id"] != started["Id"] and "VERSION=2" in now["Config"]["Env"]
    assert inspect(f"{name}-previous") is None and inspect(started["Id"]) is None


@pytest.mark.docker
def test_a_new_container_that_never_gets_healthy_brings_the_previous_one_back(box):
    run, inspect, name = box["run"], box["inspect"], box["name"]
    script = render_run_container_script(box["spec"])
    assert run(script).returncode == 0
    good = inspect(name)["Id"]
    box["env_file"].write_text("VERSION=2\nHEALTHY=no\nAPI_TOKEN=Never-Print-Me-42\n")
    failed = run(script)
    assert failed.returncode == 1
    # what pulumi-command would put in its error: no secret of the env file
    assert "Never-Print-Me-42" not in failed.stdout + failed.stderr + script
    assert "did not become ready" in failed.stderr
    assert "the previous" in failed.stderr and "runs again" in failed.stderr
    back = inspect(name)
    assert back["Id"] == good and back["State"]["Running"]
    assert inspect(f"{name}-previous") is None

    box["env_file"].write_text("VERSION=3\nHEALTHY=yes\n")  # a fixed release: no manual step
    fixed = run(script)
    assert fixed.returncode == 0, fixed.stderr
    assert "VERSION=3" in inspect(name)["Config"]["Env"]


@pytest.mark.docker
def test_leftovers_and_an_interrupted_run_are_cleaned_up(box, engine):
    run, inspect, name = box["run"], box["inspect"], box["name"]
    script = render_run_container_script(box["spec"])
    assert run(script).returncode == 0
    # an interrupted run: the old one aside (stopped) and a half-made one with the label
    engine.docker("stop", "-t", "1", name)
    engine.docker("rename", name, f"{name}-previous")
    engine.docker("create", "--name", f"{name}-stray", "--label", f"djscale.container={name}",
                  "djscale-test/run-container:1")
    result = run(script)
    assert result.returncode == 0, result.stderr
    assert "removing leftover container" in result.stderr
    assert inspect(f"{name}-stray") is None and inspect(f"{name}-previous") is None
    assert inspect(name)["State"]["Health"]["Status"] in ("starting", "healthy")

    teardown = run(render_teardown_script(name, 2))
    assert teardown.returncode == 0, teardown.stderr
    assert inspect(name) is None


@pytest.mark.docker
def test_build_script_builds_once_and_refuses_another_platform(engine, base_image, tmp_path):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo built\n")
    tag = f"djscale-test/build:{uuid.uuid4().hex[:8]}"
    kw = dict(tag=tag, context=str(context), base_image=base_image)

    # The server's own client: Debian's docker.io (20.10 has BuildKit built in; a newer
    # client on this machine's PATH may need the buildx plugin, which install-docker
    # installs on servers that need it).
    env = {**engine.env(), "PATH": "/usr/bin:" + engine.env().get("PATH", "")}

    def run(script):
        return subprocess.run(["bash", "-c", script], env=env, capture_output=True,
                              text=True, timeout=600)
    try:
        built = run(render_build_image_script(platform="linux/amd64", **kw))
        assert "WARNING: pulling images.appBase" in built.stderr  # a local image: no registry
        assert built.returncode == 0, built.stderr
        image_id = built.stdout.strip()
        assert image_id.startswith("sha256:") and "\n" not in image_id  # stdout: the id only
        again = run(render_build_image_script(platform="linux/amd64", **kw))
        assert again.stdout.strip() == image_id and "Step 1/" not in again.stderr
        other = run(render_build_image_script(platform="linux/arm64", **kw))
        assert other.returncode == 1
        assert "images.platform is linux/arm64 but this server is x86_64" in other.stderr
    finally:
        engine.docker("image", "rm", "-f", tag, check=False)


# --- the app's two slots, for real ------------------------------------------------------

def _free_port_pair() -> int:
    """A port p with p and p + 1 free on loopback."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 65535:
            with socket.socket() as other:
                try:
                    other.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no two free ports in a row")


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        return response.read().decode()


@pytest.fixture
def slots(engine, tmp_path):
    """Two slots of a unique name on loopback ports, an env file, a private state file."""
    name = f"djscale-test-{uuid.uuid4().hex[:8]}"
    env_file = tmp_path / "app.env"
    env_file.write_text("VERSION=1\nHEALTHY=yes\n")
    port = _free_port_pair()
    container = ContainerSpec(name=name, image="djscale-test/run-container:1",
                              env_file=str(env_file),
                              healthcheck=Healthcheck(HEALTH, interval="1s", timeout="2s",
                                                      retries=2, start_period="2s"),
                              healthy_within=20, stop_timeout=2)
    spec = SlotSpec(container, address="127.0.0.1", container_port=8000,
                    ports=(port, port + 1), drain_within=30,
                    state_file=str(tmp_path / "state" / "app-slot"),
                    releases_file=str(tmp_path / "state" / "releases"))

    def run(script: str, **kw):
        return subprocess.run(["bash", "-c", script], env=engine.env(), capture_output=True,
                              text=True, timeout=120, **kw)

    def running() -> dict[str, str]:
        """container name -> its slot label, for the containers of `name`"""
        listed = engine.docker("container", "ls", "--filter", f"label=djscale.container={name}",
                               "--format", '{{.Names}} {{.Label "djscale.slot"}}').stdout
        return dict((line.split(" ") + [""])[:2] for line in listed.splitlines())

    yield {"spec": spec, "env_file": env_file, "run": run, "running": running, "name": name,
           "state": tmp_path / "state" / "app-slot", "env": engine.env()}
    run(render_teardown_script(name, 2))


@pytest.mark.docker
def test_a_release_starts_beside_the_running_one_and_retires_it_after_its_requests(slots):
    spec, run, running, name = slots["spec"], slots["run"], slots["running"], slots["name"]
    port_a, port_b = spec.ports
    first = run(render_start_slot_script(spec))
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"{port_a}\n"  # stdout: the port only (nginx's upstream)
    assert _get(port_a) == "1"
    again = run(render_start_slot_script(spec))
    assert again.stdout == f"{port_a}\n" and "already runs this release" in again.stderr
    assert run(render_retire_slot_script(spec, port_a)).returncode == 0
    assert slots["state"].read_text() == "a\n" and running() == {f"{name}-a": "a"}

    slots["env_file"].write_text("VERSION=2\nHEALTHY=yes\n")
    second = run(render_start_slot_script(spec))
    assert second.returncode == 0, second.stderr
    assert second.stdout == f"{port_b}\n"
    assert (_get(port_a), _get(port_b)) == ("1", "2")  # both serve until the switch
    assert slots["state"].read_text() == "a\n"  # not switched yet: a start never records

    # a request in progress on the old slot when nginx switches: the retire waits for it
    held = socket.create_connection(("127.0.0.1", port_a), timeout=10)
    held.sendall(b"GET / HTTP/1.0\r\n")
    retire = subprocess.Popen(["bash", "-c", render_retire_slot_script(spec, port_b)],
                              env=slots["env"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)
        assert retire.poll() is None and f"{name}-a" in running()
        held.sendall(b"\r\n")
        answer = b""
        while chunk := held.recv(4096):  # HTTP/1.0: the server closes after the body
            answer += chunk
        assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"1"), answer
    finally:
        held.close()
    out, err = retire.communicate(timeout=60)
    assert retire.returncode == 0, err
    assert f"retired {name}-a" in err
    assert running() == {f"{name}-b": "b"} and slots["state"].read_text() == "b\n"
    records = (slots["state"].parent / "releases").read_text().splitlines()
    assert [line.split()[2] for line in records] == ["current", "current"]
    assert records[0].split()[1] == records[1].split()[1]  # one image, two settings
    assert records[0].split()[1].startswith("sha256:")
    third = run(render_start_slot_script(replace(spec, container=replace(
        spec.container, stop_timeout=3))))  # the next release goes back to slot a
    assert third.stdout == f"{port_a}\n", third.stderr


@pytest.mark.docker
def test_a_release_that_never_gets_healthy_leaves_the_running_one_alone(slots):
    spec, run, running, name = slots["spec"], slots["run"], slots["running"], slots["name"]
    port_a, _ = spec.ports
    assert run(render_start_slot_script(spec)).returncode == 0
    assert run(render_retire_slot_script(spec, port_a)).returncode == 0
    slots["env_file"].write_text("VERSION=2\nHEALTHY=no\nAPI_TOKEN=Never-Print-Me-42\n")
    failed = run(render_start_slot_script(spec))
    assert failed.returncode == 1 and failed.stdout == ""
    assert "did not become ready" in failed.stderr and "keeps serving" in failed.stderr
    assert "Never-Print-Me-42" not in failed.stderr + render_start_slot_script(spec)
    assert running() == {f"{name}-a": "a"} and _get(port_a) == "1"
    assert slots["state"].read_text() == "a\n"


@pytest.mark.docker
def test_a_start_waits_for_the_app_not_for_dockers_first_check(slots, engine):
    """Docker runs a container's first healthcheck one interval after its start: with an
    interval longer than the start may wait, only the script's own run of the same command
    can see the new slot ready. A broken release still fails, and a re-run finds the
    ready slot before Docker has checked it."""
    spec, run, running, name = slots["spec"], slots["run"], slots["running"], slots["name"]
    port_a, port_b = spec.ports
    slow_check = replace(spec, container=replace(
        spec.container, healthy_within=15,
        healthcheck=replace(spec.container.healthcheck, interval="600s", start_period="600s")))
    first = run(render_start_slot_script(slow_check))
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"{port_a}\n" and _get(port_a) == "1"
    health = engine.docker("container", "inspect", "--format", "{{.State.Health.Status}}",
                           f"{name}-a").stdout.strip()
    assert health == "starting"  # Docker has not checked it yet: the script saw it ready
    again = run(render_start_slot_script(slow_check))
    assert again.stdout == f"{port_a}\n" and "already runs this release" in again.stderr
    assert running() == {f"{name}-a": "a"}
    assert run(render_retire_slot_script(slow_check, port_a)).returncode == 0

    slots["env_file"].write_text("VERSION=2\nHEALTHY=no\n")
    failed = run(render_start_slot_script(slow_check))
    assert failed.returncode == 1 and failed.stdout == ""
    assert "did not become ready within 15s (running starting)" in failed.stderr
    assert running() == {f"{name}-a": "a"} and _get(port_a) == "1"

    slots["env_file"].write_text("VERSION=2\nHEALTHY=yes\n")
    fixed = run(render_start_slot_script(slow_check))
    assert fixed.returncode == 0 and fixed.stdout == f"{port_b}\n", fixed.stderr
    assert _get(port_b) == "2"


@pytest.mark.docker
def test_a_container_of_before_slots_keeps_its_port_until_the_switch(slots, engine):
    """Servers deployed before slots run one container named like the slots' prefix on
    app.port (slot a's port): the first release goes to b, the retire removes the old one."""
    spec, run, running, name = slots["spec"], slots["run"], slots["running"], slots["name"]
    port_a, port_b = spec.ports
    legacy = replace(spec.container, ports=(Port("127.0.0.1", port_a, 8000),))
    assert run(render_run_container_script(legacy)).returncode == 0
    slots["env_file"].write_text("VERSION=2\nHEALTHY=yes\n")
    started = run(render_start_slot_script(spec))
    assert started.stdout == f"{port_b}\n", started.stderr
    assert (_get(port_a), _get(port_b)) == ("1", "2")
    retired = run(render_retire_slot_script(spec, port_b))
    assert retired.returncode == 0, retired.stderr
    assert running() == {f"{name}-b": "b"}
