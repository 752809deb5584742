"""The inspect command, run as a user runs it (a subprocess) on fixture stacks."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.config import parse_config
from components.render import appenv, nginx, postgres
from components.config import read_stack_file
from tests.render.conftest import assert_golden

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def inspect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "components.render", *args], cwd=ROOT,
                          capture_output=True, text=True)


def test_two_app_stack_writes_every_host(tmp_path):
    out = tmp_path / "out"
    result = inspect("--stack-file", str(FIXTURES / "stack_two_apps.yaml"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # every secret is set in this fixture
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["app1", "app2", "db", "proxy"]
    # the upload's directory is named by the app's content hash: not part of the golden text
    summary = re.sub(r"app-[0-9a-f]{16}", "app-<hash>", (out / "SUMMARY.txt").read_text())
    assert_golden("inspect-two-apps-summary.txt", summary)
    assert result.stdout.endswith((out / "SUMMARY.txt").read_text())

    # The files are the renderers' output for the same config, secrets as placeholders.
    raw, secrets = read_stack_file(FIXTURES / "stack_two_apps.yaml")
    cfg = parse_config(raw, secrets, check_files=False)
    apps = ["10.0.0.21", "10.0.0.22"]
    assert (out / "db/etc/djscale/postgres/pg_hba.conf").read_text() == \
        postgres.render_pg_hba(cfg, apps)
    assert (out / "proxy/etc/djscale/nginx/nginx.conf").read_text() == \
        nginx.render_nginx_conf(cfg, apps, tls=True)
    env = (out / "app2/etc/djscale/app.env").read_text()
    assert env == appenv.render_app_env(
        cfg, db_host="10.0.0.10", db_port=5432, db_name="shop", db_user="shop_app",
        db_password="<secret:database password>", secret_key="<secret:django secret key>",
        s3_secret_key="<secret:static storage secret key>")
    assert "DJANGO_SUPERUSER_PASSWORD" not in env
    release = (out / "app1/steps/10-release.stdin").read_text()  # its stdin, no file
    assert "DJANGO_SUPERUSER_PASSWORD=<secret:superuser password>\n" in release
    assert not list(out.glob("app*/etc/djscale/release.env"))
    assert not list(out.glob("app2/steps/*release*"))  # the release runs on app1
    assert (out / "db/steps/06-setup.stdin").read_text().startswith("SCRAM-SHA-256$4096:")
    assert (out / "db/steps/06-setup.sh").stat().st_mode & 0o111
    assert (out / "db/steps/02-tls.sh").read_text() == postgres.render_db_tls_script(cfg)
    assert (out / "app2/etc/djscale/db-ca.pem").read_text() == (
        "-----BEGIN CERTIFICATE-----\n<output:database certificate>\n"
        "-----END CERTIFICATE-----\n")  # what db-tls prints, known at deploy time
    container = (out / "app2/steps/09-start.sh").read_text()
    assert "image='<output:app image id>'" in container
    assert "--env-file \"$env_file\"" in container  # secrets stay in the root-only file
    ship = json.loads((out / "app2/local/06-image.stdin").read_text())  # no build on app2
    assert (ship["image"], ship["key"]) == ("<output:app image id>", "<secret:ssh private key>")
    assert ship["source"]["host"] == cfg.app_servers[0].address
    uploads = (out / "app1/uploads/06-upload-context.txt").read_text().splitlines()
    assert "manage.py" in uploads and "Dockerfile" in uploads
    assert not any(name.endswith((".pyc", ".env")) for name in uploads)


def test_rerun_replaces_its_own_output_but_never_a_foreign_directory(tmp_path):
    out = tmp_path / "out"
    stack = str(FIXTURES / "stack_one_app.yaml")
    assert inspect("--stack-file", stack, "--out", str(out)).returncode == 0
    (out / "app1" / "stale").write_text("x")
    assert inspect("--stack-file", stack, "--out", str(out)).returncode == 0
    assert not (out / "app1" / "stale").exists()

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    refused = inspect("--stack-file", stack, "--out", str(foreign))
    assert refused.returncode != 0 and "refusing" in refused.stderr
    assert (foreign / "keep.txt").read_text() == "mine"


def test_database_from_another_stack_renders_no_database_host(tmp_path):
    out = tmp_path / "out"
    result = inspect("--stack-file", str(FIXTURES / "stack_dbref.yaml"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert not (out / "db").exists()
    env = (out / "app1/etc/djscale/app.env").read_text()
    for line in ["DATABASE_HOST=<output:example-org/djscale/db-prod privateAddress>",
                 "DATABASE_PORT=<output:example-org/djscale/db-prod port>",
                 "DATABASE_NAME=<output:example-org/djscale/db-prod dbName>",
                 "DATABASE_USER=<output:example-org/djscale/db-prod dbUser>"]:
        assert f"{line}\n" in env
    assert "<output:example-org/djscale/db-prod dbCaCert>" in \
        (out / "app1/etc/djscale/db-ca.pem").read_text()


def test_project_stack_without_secret_values_renders_with_a_note(tmp_path):
    result = inspect("--stack", "dev", "--out", str(tmp_path / "dev"))
    assert result.returncode == 0, result.stderr
    assert "secret staticStorageSecretKey is not set in Pulumi.dev.yaml" in result.stderr


def test_invalid_config_exits_2_with_every_problem(tmp_path):
    bad = tmp_path / "Pulumi.bad.yaml"
    text = (FIXTURES / "stack_two_apps.yaml").read_text()
    bad.write_text(text.replace("privateAddress: 10.0.0.22", "privateAddress: 10.0.0.300")
                       .replace("djscale:domain: shop.example.com", "djscale:domain: shop"))
    out = tmp_path / "out"
    result = inspect("--stack-file", str(bad), "--out", str(out))
    assert result.returncode == 2
    assert "invalid djscale stack config" in result.stderr
    assert "appServers[1].privateAddress" in result.stderr
    assert "domain" in result.stderr
    assert not out.exists()


def test_inspect_renderers_and_plans_do_not_import_pulumi():
    code = ("import sys, components.render.__main__, components.plans.describe, "
            "components.config.docs; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pulumi'))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("stack", ["Pulumi.dev.yaml", "Pulumi.prod.yaml",
                                   *sorted(p.name for p in FIXTURES.glob("stack_*.yaml"))])
def test_every_script_inspect_writes_passes_shellcheck(stack, tmp_path):
    path = ROOT / stack if stack.startswith("Pulumi.") else FIXTURES / stack
    out = tmp_path / "out"
    assert inspect("--stack-file", str(path), "--out", str(out)).returncode == 0
    python = {"djscale-s3": "tests/components/test_s3.py",
              "djscale-upstream-watch": "tests/components/test_upstream_watch.py",
              "djscale-upstream-slots": "tests/components/test_upstream_slots.py"}
    scripts = [p for p in out.rglob("*") if p.is_file() and p.read_text().startswith("#!")
               and p.name not in python]
    assert list(out.rglob("djscale-upstream-watch"))  # every stack has a proxy
    assert list(out.rglob("djscale-upstream-slots"))
    for name in python:  # every Python program is one of djscale's, verbatim
        assert all(p.read_text().startswith("#!/usr/bin/env python3\n# managed by djscale")
                   for p in out.rglob(name))
    steps = list(out.glob("*/steps/*.sh"))
    assert steps and set(steps) <= set(scripts)  # every step is a script with its shell named
    for script in scripts:
        assert script.read_text().startswith(
            "#!/usr/bin/env bash\n# managed by djscale, do not edit\n"), script
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is required (apt-get install shellcheck)"
    result = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_a_project_of_ones_own_is_inspected_with_its_names_and_secret_placeholders(tmp_path):
    """The stack of a project djscale did not shape: its env file under the project's names,
    each of its own secrets a placeholder named after its key path; its files listed as the
    upload, from app.source."""
    out = tmp_path / "out"
    result = inspect("--stack-file", str(FIXTURES / "stack_own_project.yaml"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    env = (out / "app2/etc/djscale/app.env").read_text()
    assert "DATABASE_USERNAME=django\n" in env and "DATABASE_USER=" not in env
    assert env.endswith("API_TOKEN=<secret:appSecrets.API_TOKEN>\n")
    uploads = (next((out / "app1" / "uploads").iterdir())).read_text().splitlines()
    assert "deploy/Dockerfile" in uploads and "accounts/models.py" in uploads
    assert "README.md" not in uploads  # its .dockerignore applies
