"""djscale-s3 (components/s3.py), the database host's S3 client: its signatures are AWS's
(compared with botocore's signer), and it runs as the backup scripts run it, as a command,
against moto's S3 server: upload (single and multipart), list, download, delete, errors.

moto checks signatures only with INITIAL_NO_AUTH_ACTION_COUNT and IAM users of its own; it
then also refuses some correctly signed requests: it signs the URL it reconstructs, whose
percent-escapes differ (boto3's own ListObjectsV2 with Prefix "db/" is refused there too).
So the server with signature checks gets keys and prefixes that need no escaping, and the
escaping is proven against botocore's signer.
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from components import s3 as tool
from tests.support.s3 import MotoS3Server, s3_fixture

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
SCRIPT = Path(tool.__file__)

s3 = s3_fixture(scope="module", bucket="djscale-backups")


def _botocore_authorization(method: str, url: str, body: bytes, creds) -> str:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, data=body,
                         headers={"x-amz-content-sha256": tool.sha256_hex(body)})
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        S3SigV4Auth(Credentials(creds.access_key_id, creds.secret_access_key), "s3",
                    "eu-west-1").add_auth(request)
    return request.headers["Authorization"]


@pytest.mark.parametrize("endpoint,path_style", [
    ("http://127.0.0.1:9000", True), ("https://s3.example.net", False),
    ("https://minio.example.net:8443/storage", True), ("", False)])
@pytest.mark.parametrize("method,key,query,body", [
    ("GET", "", {"list-type": "2", "prefix": "backups/django-"}, b""),
    ("GET", "", {"list-type": "2", "prefix": "a b+ü/", "continuation-token": "x/y=="}, b""),
    ("PUT", "backups/django-20260102T030405Z.dump.gpg", {}, b"\x00dump"),
    ("PUT", "odd/a b+ü~(x)*'.dump", {"partNumber": "2", "uploadId": "Up/Id+=="}, b"part"),
    ("POST", "backups/x.dump", {"uploads": ""}, b""),
    ("DELETE", "backups/x.dump", {}, b""),
])
def test_signatures_are_the_ones_aws_sdk_computes(endpoint, path_style, method, key, query,
                                                  body):
    creds = tool.Credentials("AKIAEXAMPLE", "secret/with+chars")
    bucket = tool.Bucket(endpoint, "eu-west-1", "djscale-backups", creds, path_style)
    path = bucket._path(key)
    target = path + ("?" + "&".join(f"{tool._quote(k)}={tool._quote(v)}"
                                    for k, v in sorted(query.items())) if query else "")
    scheme = "http" if endpoint.startswith("http:") else "https"
    mine = tool.sign(method, bucket.host, path, query, tool.sha256_hex(body), "eu-west-1",
                     creds, NOW)
    assert mine["authorization"] == _botocore_authorization(
        method, f"{scheme}://{bucket.host}{target}", body, creds)
    assert mine["x-amz-date"] == "20260102T030405Z"


def test_aws_is_the_default_endpoint_and_virtual_hosted_addressing():
    bucket = tool.Bucket("", "eu-west-1", "my-backups", tool.Credentials("a", "b"))
    assert (bucket.https, bucket.host, bucket._path("k/x y")) == (
        True, "my-backups.s3.eu-west-1.amazonaws.com", "/k/x%20y")
    minio = tool.Bucket("http://10.0.0.5:9000", "us-east-1", "b-1", tool.Credentials("a", "b"),
                        path_style=True)
    assert (minio.https, minio.host, minio._path(""), minio._path("k")) == (
        False, "10.0.0.5:9000", "/b-1", "/b-1/k")


# --- the command against moto ------------------------------------------------------------

def _credentials(tmp_path: Path, key_id: str, secret: str, mode: int = 0o600) -> Path:
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"accessKeyId": key_id, "secretAccessKey": secret}))
    path.chmod(mode)
    return path


def _run(server, credentials: Path, *args: str, bucket: str | None = None):
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--endpoint", server.endpoint_url, "--region",
         server.region, "--bucket", bucket or server.bucket, "--path-style",
         "--credentials", str(credentials), "--part-size", str(5 * tool.MIB), *args],
        capture_output=True, text=True, timeout=120)


def test_upload_list_download_and_delete(s3, tmp_path):
    creds = _credentials(tmp_path, s3.access_key_id, s3.secret_access_key)
    small, large = tmp_path / "small.dump", tmp_path / "large.dump"
    small.write_bytes(b"PGDMP small")
    large.write_bytes(os.urandom(11 * tool.MIB + 17))  # three parts of 5 MiB at most
    for key, path in (("backups/django-20260101T000000Z.dump", small),
                      ("backups/django-20260102T000000Z.dump", large),
                      ("other/keep.txt", small), ("backups/a b+ü.dump", small)):
        result = _run(s3, creds, "put", key, str(path))
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), key

    listed = _run(s3, creds, "list", "backups/")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(k, int(n)) for k, n, _ in rows] == [
        ("backups/a b+ü.dump", 11), ("backups/django-20260101T000000Z.dump", 11),
        ("backups/django-20260102T000000Z.dump", 11 * tool.MIB + 17)]
    assert all(modified.endswith("Z") for _, _, modified in rows)
    # the multipart upload is one object with the file's bytes
    head = s3.client().head_object(Bucket=s3.bucket, Key="backups/django-20260102T000000Z.dump")
    assert head["ETag"].endswith('-3"')

    back = tmp_path / "back.dump"
    assert _run(s3, creds, "get", "backups/django-20260102T000000Z.dump", str(back)).returncode == 0
    assert back.read_bytes() == large.read_bytes()
    assert not (tmp_path / "back.dump.part").exists()

    assert _run(s3, creds, "delete", "backups/a b+ü.dump").returncode == 0
    assert [line.split("\t")[0] for line in _run(s3, creds, "list", "backups/").stdout.splitlines()
            ] == ["backups/django-20260101T000000Z.dump", "backups/django-20260102T000000Z.dump"]


def test_a_listing_longer_than_one_page_is_followed(s3, tmp_path):
    creds = _credentials(tmp_path, s3.access_key_id, s3.secret_access_key)
    client = s3.client()
    for i in range(1005):  # S3 answers at most 1000 keys a page
        client.put_object(Bucket=s3.bucket, Key=f"many/{i:04d}", Body=b"x")
    listed = _run(s3, creds, "list", "many/")
    assert listed.returncode == 0, listed.stderr
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == [
        f"many/{i:04d}" for i in range(1005)]


def test_errors_name_the_request_and_the_servers_code_and_show_no_secret(s3, tmp_path):
    creds = _credentials(tmp_path, s3.access_key_id, "Not-Shown-Secret-1")
    missing = _run(s3, creds, "get", "backups/none.dump", str(tmp_path / "x"))
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == ("djscale-s3: GET s3://djscale-backups/backups/none.dump: HTTP 404 "
                              "NoSuchKey: The specified key does not exist.\n")
    assert not (tmp_path / "x.part").exists() and not (tmp_path / "x").exists()
    nobucket = _run(s3, creds, "list", "x/", bucket="no-such-bucket")
    assert nobucket.returncode == 1 and "HTTP 404 NoSuchBucket" in nobucket.stderr
    assert "Not-Shown-Secret-1" not in missing.stderr + nobucket.stderr


def test_credentials_others_can_read_are_refused(s3, tmp_path):
    creds = _credentials(tmp_path, s3.access_key_id, s3.secret_access_key, mode=0o644)
    result = _run(s3, creds, "list", "x/")
    assert (result.returncode, result.stderr) == (
        1, f"djscale-s3: {creds} must be readable by its owner only (mode 0600)\n")


def test_an_unreachable_server_fails_after_its_retries(tmp_path, monkeypatch):
    monkeypatch.setattr(tool, "time", mock.Mock())  # no waiting between attempts
    from tests.support.postgres import free_port

    bucket = tool.Bucket(f"http://127.0.0.1:{free_port()}", "us-east-1", "bkt",
                         tool.Credentials("a", "b"), path_style=True)
    with pytest.raises(tool.S3Error, match=r"^GET s3://bkt/k: \[Errno 111\] Connection refused$"):
        bucket.get("k", str(tmp_path / "k"))
    assert tool.time.sleep.call_count == tool.ATTEMPTS - 1


@pytest.fixture(scope="module")
def checking_s3():
    """moto checking every signature: an IAM user with S3 rights, its key, a bucket."""
    import boto3

    server = MotoS3Server(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    server.start()
    try:
        iam = boto3.client("iam", endpoint_url=server.endpoint_url, region_name=server.region,
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="backups")
        key = iam.create_access_key(UserName="backups")["AccessKey"]
        iam.put_user_policy(UserName="backups", PolicyName="s3", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        server.access_key_id, server.secret_access_key = (key["AccessKeyId"],
                                                          key["SecretAccessKey"])
        server.bucket = server.create_bucket("signed-backups")
        yield server
    finally:
        server.stop()


def test_a_server_that_checks_signatures_takes_every_kind_of_request(checking_s3, tmp_path):
    server = checking_s3
    creds = _credentials(tmp_path, server.access_key_id, server.secret_access_key)
    dump = tmp_path / "db.dump"
    dump.write_bytes(os.urandom(6 * tool.MIB))  # two parts
    assert _run(server, creds, "put", "db-20260101T000000Z.dump", str(dump)).returncode == 0
    assert _run(server, creds, "put", "db-x", str(dump)).returncode == 0
    listed = _run(server, creds, "list", "db-")
    assert listed.returncode == 0, listed.stderr
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == [
        "db-20260101T000000Z.dump", "db-x"]
    back = tmp_path / "back"
    assert _run(server, creds, "get", "db-20260101T000000Z.dump", str(back)).returncode == 0
    assert back.read_bytes() == dump.read_bytes()
    assert _run(server, creds, "delete", "db-x").returncode == 0

    wrong = _credentials(tmp_path, server.access_key_id, "wrong-secret")
    refused = _run(server, wrong, "list", "db-")
    assert refused.returncode == 1
    assert "HTTP 403 SignatureDoesNotMatch" in refused.stderr, refused.stderr
