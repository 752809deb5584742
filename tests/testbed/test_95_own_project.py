"""A Django project djscale did not shape (issue 11, item 8), deployed by the same program
with nothing but config: `tests/fixtures/own_project` (the layout of DigitalOcean's Django
tutorial: its own env names mapped by `app.envNames`, `DATABASE_ENGINE` as an `app.env`
constant, a user model that logs in by email, a plain setting from `app.env`, a secret from
`appSecrets`, a Dockerfile under `deploy/` using a BuildKit cache mount). The same steps as
README's "Using your own Django project".

Its pages answer through the proxy; the plain setting shows on a page; the secret signs a
message the test verifies (HMAC) and is in no log or process list; the admin logs in by
email; a second release does not trip over the existing superuser. Last of the proofs: it
leaves the bed on the other project (the bed is torn down after it)."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import shlex
import shutil
import uuid

import pytest
import yaml

from . import layout
from .bed import PROJECT_DIR, stack_values
from .deploy import deploy_bed

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)

STACK_FILE = PROJECT_DIR / "tests/fixtures/stack_own_project.yaml"
GREETING = "Hello from a project djscale did not shape"


def _app_block(source: str) -> dict:
    app = yaml.safe_load(STACK_FILE.read_text())["config"]["djscale:app"]
    # its /healthz goes through Django's Host check: the container's own healthcheck asks
    # for 127.0.0.1 (README: what your project must do)
    return {**app, "source": source, "extraAllowedHosts": ["127.0.0.1"]}


def _present_servers(bed) -> tuple[list[dict], dict]:
    """The app servers the stack still has (test_90 removed one) and the ssh block pinning
    exactly the hosts in the stack."""
    present = [app for app in bed.apps
               if bed.sudo(app, "test -e /etc/djscale/app.env", check=False).returncode == 0]
    servers = [{"name": app, "address": bed.address(app), "privateAddress": bed.address(app)}
               for app in present]
    ssh = stack_values(bed.state)["ssh"]
    keep = {bed.address(role) for role in ("db", "proxy", *present)}
    ssh["hostKeys"] = {a: k for a, k in ssh["hostKeys"].items() if a in keep}
    return servers, ssh


def _curl(bed, path: str, *args: str) -> str:
    out = bed.curl(f"https://{layout.DOMAIN}{path}", "-f", *args)
    assert out.returncode == 0, (path, out.stderr)
    return out.stdout


def _admin_login(bed, email: str, password: str) -> str:
    """The admin login form, as a browser sends it: where the login lands."""
    jar = f"/tmp/own-{uuid.uuid4().hex[:8]}.jar"
    form = _curl(bed, "/admin/login/", "-c", jar)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1]
    out = bed.curl(f"https://{layout.DOMAIN}/admin/login/?next=/admin/", "-b", jar, "-c", jar,
                   "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                   "-H", f"Referer: https://{layout.DOMAIN}/admin/login/",
                   "-H", f"Origin: https://{layout.DOMAIN}",
                   "--data-urlencode", f"csrfmiddlewaretoken={token}",
                   "--data-urlencode", f"username={email}",
                   "--data-urlencode", f"password={password}")
    return out.stdout


def _grep_token(bed, role: str, token: str) -> str:
    """How many lines of the host's process list, container logs and journal hold the
    token: read from stdin into a variable, never an argument (so not in the ps it reads)."""
    script = ("read -r token; { ps auxww; for c in $(docker ps -aq); do docker logs $c 2>&1; "
              "done; journalctl --no-pager 2>/dev/null; } "
              "| grep -c -F -f <(printf '%s\\n' \"$token\") || true")
    return bed.ssh(role, f"sudo bash -c {shlex.quote(script)}",
                   input_text=token + "\n").stdout.strip()


def test_a_project_djscale_did_not_shape_deploys_by_config_alone(bed, deployed, tmp_path):
    token = secrets.token_hex(24)
    project = tmp_path / "own_project"
    shutil.copytree(PROJECT_DIR / "tests/fixtures/own_project", project)
    servers, ssh = _present_servers(bed)
    # its own database: the bundled project's migration history is not its own
    database = {**stack_values(bed.state)["database"], "name": "ownsite"}
    changes = {"app": _app_block(str(project)), "appServers": servers, "ssh": ssh,
               "database": database}
    outputs = deploy_bed(changes=changes, secrets={"appSecrets": {"API_TOKEN": token}})

    assert _curl(bed, "/").strip() == GREETING  # app.env reached the settings
    message = uuid.uuid4().hex
    signed = _curl(bed, f"/signature?message={message}").strip()
    assert signed == hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()

    email = outputs["adminEmail"]
    assert email == "admin@own.example.com"
    landed = _admin_login(bed, email, outputs["adminPassword"])
    assert landed == f"302 https://{layout.DOMAIN}/admin/", landed  # logged in, by email

    for server in servers:
        role = server["name"]
        found = _grep_token(bed, role, token)
        assert found == "0", (role, found)
        assert bed.sudo(role, "stat -c '%a %U' /etc/djscale/app.env").stdout.strip() == \
            "600 root"

    # a second release: the superuser (looked up by email) exists, the release passes
    (project / "mysite/views.py").write_text(
        (project / "mysite/views.py").read_text() + "\n# release two\n")
    deploy_bed(changes=changes, secrets={"appSecrets": {"API_TOKEN": token}})
    assert _curl(bed, "/").strip() == GREETING
    assert _admin_login(bed, email, outputs["adminPassword"]).startswith("302 ")
    images = {bed.sudo(s["name"], f"docker inspect --format '{{{{.Image}}}}' "
                                  f"{bed.app_container(s['name'])}").stdout.strip()
              for s in servers}
    assert len(images) == 1, images  # built once, the same image everywhere
