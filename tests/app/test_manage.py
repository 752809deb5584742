"""The deploy-time management commands, against the real PostgreSQL and S3 servers."""
import json
import subprocess
import sys
import urllib.error
import urllib.request

from .helpers import APP_DIR, SUPERUSER, manage

FINDERS_PROBE = """
import json, django
django.setup()
from django.contrib.staticfiles.finders import get_finders
paths = set()  # as collectstatic names them: prefixed, first finder wins on duplicates
for finder in get_finders():
    for path, storage in finder.list(["CVS", ".*", "*~"]):
        prefix = getattr(storage, "prefix", None)
        paths.add(f"{prefix}/{path}" if prefix else path)
print(json.dumps(sorted(paths)))
"""


def test_migrate_applies_everything(migrated, prod_env, postgres):
    out = manage(prod_env, "showmigrations", "--plan").stdout
    assert "[ ]" not in out and "[X]  mydb.0002_sample_questions" in out
    # the sample rows of the data migration are there
    count = postgres.psql("SELECT count(*) FROM mydb_question;", database="django")
    assert int(count) == 3
    # and a second run (every deploy runs it) changes nothing
    assert "No migrations to apply" in manage(prod_env, "migrate", "--noinput").stdout


def test_committed_migrations_match_the_models(prod_env):
    proc = manage(prod_env, "makemigrations", "--check", "--dry-run", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_createsuperuser_from_environment(migrated, postgres):
    row = postgres.psql("SELECT username, email, is_superuser, is_staff FROM auth_user;",
                        database="django").strip()
    assert row == f"{SUPERUSER[0]}|{SUPERUSER[1]}|t|t"


def test_collectstatic_uploads_every_static_file(collected, prod_env, s3):
    found = json.loads(subprocess.run(
        [sys.executable, "-c", FINDERS_PROBE], cwd=APP_DIR, env=prod_env, text=True,
        capture_output=True, check=True).stdout)
    assert "admin/css/base.css" in found and "mydb/style.css" in found
    assert f"{len(found)} static files copied" in collected.stdout

    client = s3.client()
    keys = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket,
                                                                 Prefix="static/"):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    assert keys == {f"static/{path}" for path in found}


def test_static_files_are_public_over_http(collected, s3):
    """Fetched anonymously from the S3 endpoint: the public-read ACL works."""
    url = f"{s3.endpoint_url}/{s3.bucket}/static/mydb/style.css"
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        assert "text/css" in resp.headers["Content-Type"]
        assert resp.headers["Cache-Control"] == "public, max-age=3600"
        body = resp.read().decode()
    assert body == (APP_DIR / "mydb/static/mydb/style.css").read_text()
    grants = s3.client().get_object_acl(Bucket=s3.bucket, Key="static/mydb/style.css")["Grants"]
    assert {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"} in [
        g["Grantee"] for g in grants if g["Permission"] == "READ"]


def test_media_uploads_are_private(collected, prod_env, s3):
    """The default storage (uploads) is private: anonymous reads fail, signed URLs work."""
    script = ("import django; django.setup()\n"
              "from django.core.files.base import ContentFile\n"
              "from django.core.files.storage import default_storage as s\n"
              "name = s.save('probe.txt', ContentFile(b'secret'))\n"
              "print(name); print(s.url(name))\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=APP_DIR, env=prod_env, text=True,
                         capture_output=True, check=True).stdout.split()
    name, signed_url = out[-2], out[-1]
    plain_url = f"{s3.endpoint_url}/{s3.bucket}/media/{name}"
    try:
        urllib.request.urlopen(plain_url, timeout=10)
        raise AssertionError("an upload is readable without a signature")
    except urllib.error.HTTPError as exc:
        assert exc.code == 403
    assert "Signature=" in signed_url or "X-Amz-Signature=" in signed_url
    with urllib.request.urlopen(signed_url, timeout=10) as resp:
        assert resp.read() == b"secret"
