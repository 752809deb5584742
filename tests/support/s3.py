"""A real S3-compatible server for tests: moto's standalone server, as a subprocess.

It speaks the S3 HTTP API on a free port (path-style addressing, like MinIO), keeps its
state in memory, and accepts any credentials. Needs `moto[server]` (flask, flask-cors).

    from tests.support.s3 import s3_fixture
    s3 = s3_fixture()                 # in a conftest: a session fixture
    def test_x(s3): s3.client().list_objects_v2(Bucket=s3.bucket)
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from .postgres import free_port

REGION = "us-east-1"
ACCESS_KEY_ID = "test-access-key"
SECRET_ACCESS_KEY = "test-secret-key"


class MotoS3Server:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None,
                 env: dict[str, str] | None = None):
        """`env`: moto settings for the server process (e.g. INITIAL_NO_AUTH_ACTION_COUNT,
        after which it checks every request's signature against IAM users it knows)."""
        self.env = env
        self.host = host
        self.port = port or free_port(host)
        self.endpoint_url = f"http://{host}:{self.port}"
        self.access_key_id = ACCESS_KEY_ID
        self.secret_access_key = SECRET_ACCESS_KEY
        self.region = REGION
        self.bucket: str | None = None  # set by s3_fixture
        self._log: Path | None = None
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        fd, path = tempfile.mkstemp(prefix="djscale-moto-", suffix=".log")
        self._log = Path(path)
        log = os.fdopen(fd, "ab")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(self.env or {})})
        log.close()  # the child has its own copy
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"moto server exited:\n{self._log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2).read()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto server did not answer in {timeout}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id=self.access_key_id,
                            aws_secret_access_key=self.secret_access_key)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def object_url(self, bucket: str, key: str) -> str:
        return f"{self.endpoint_url}/{bucket}/{key}"


def s3_fixture(*, scope: str = "session", name: str = "s3", bucket: str = "djscale-static",
               **server_kw) -> pytest.FixtureFunctionMarker:
    """A pytest fixture yielding a started MotoS3Server with one bucket, `.bucket`."""

    @pytest.fixture(scope=scope, name=name)
    def _s3() -> Iterator[MotoS3Server]:
        server = MotoS3Server(**server_kw)
        try:
            server.start()
            server.bucket = server.create_bucket(bucket)
            yield server
        finally:
            server.stop()

    return _s3
