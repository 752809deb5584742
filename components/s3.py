#!/usr/bin/env python3
# managed by djscale, do not edit
"""djscale-s3: the database host's S3 client for backups, in Python's standard library only.

Installed verbatim on the database host as /usr/local/lib/djscale/djscale-s3
(components/render/backups.py): Debian and Ubuntu ship python3, while awscli and s3cmd are
packages of their own that not every release carries (bookworm's awscli is v2 2.9.19; a
100 MB dependency for four requests). It signs each request with AWS Signature Version 4
(the payload's SHA-256 signed too, so it works over plain HTTP to MinIO as over HTTPS to
AWS), and knows exactly what the backups need:

    djscale-s3 --endpoint URL --region R --bucket B [--path-style] --credentials FILE CMD
      put KEY FILE     upload FILE (multipart from --part-size on, 64 MiB by default)
      get KEY FILE     download to FILE (written beside it, renamed when complete)
      list PREFIX      every object under PREFIX: "KEY<TAB>SIZE<TAB>LAST-MODIFIED", by key
      delete KEY       delete one object

The credentials are a root-only (0600) JSON file, {"accessKeyId": .., "secretAccessKey": ..}:
never an argument, never printed. Errors name the request and the server's error code and
exit 1. `--endpoint` empty: AWS (https://s3.<region>.amazonaws.com).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import stat
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Optional

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 64 * MIB
MIN_PART_SIZE = 5 * MIB  # S3's smallest part but the last
MAX_PARTS = 10000
ATTEMPTS = 3  # each request, on a connection error or a 5xx answer
TIMEOUT = 300


class S3Error(RuntimeError):
    pass


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


def read_credentials(path: str) -> Credentials:
    """The root-only credentials file; refused when others may read it."""
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise S3Error(f"{path} must be readable by its owner only (mode 0600)")
    with open(path, encoding="utf-8") as file:
        data = json.load(file)
    return Credentials(data["accessKeyId"], data["secretAccessKey"])


def _quote(text: str, safe: str = "") -> str:
    """RFC 3986 percent-encoding, as SigV4 wants it (unreserved characters kept)."""
    return urllib.parse.quote(text, safe=safe + "-_.~")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign(method: str, host: str, path: str, query: dict[str, str], payload_hash: str,
         region: str, credentials: Credentials, now: datetime.datetime) -> dict[str, str]:
    """The headers that authenticate one request (AWS Signature Version 4, service s3):
    `path` already percent-encoded, `query` not."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical_query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query.items()))
    canonical = "\n".join([method, path, canonical_query,
                           *(f"{name}:{headers[name]}" for name in sorted(headers)), "",
                           signed, payload_hash])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha256_hex(canonical.encode())])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{credentials.secret_access_key}".encode(), day),
                            region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/"
                                f"{scope}, SignedHeaders={signed}, Signature={signature}")
    return headers


def _tag(element: ElementTree.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]  # without the namespace


def _find(element: ElementTree.Element, name: str) -> Optional[str]:
    for child in element:
        if _tag(child) == name:
            return child.text or ""
    return None


class Bucket:
    def __init__(self, endpoint: str, region: str, bucket: str, credentials: Credentials,
                 path_style: bool = False):
        url = urllib.parse.urlsplit(endpoint or f"https://s3.{region}.amazonaws.com")
        if url.scheme not in ("http", "https") or not url.hostname:
            raise S3Error(f"{endpoint!r} is not an http(s) endpoint")
        self.https = url.scheme == "https"
        self.region, self.bucket, self.credentials = region, bucket, credentials
        self.base_path = url.path.rstrip("/")
        self.host = url.netloc if path_style else f"{bucket}.{url.netloc}"
        self.path_style = path_style

    # -- one request -----------------------------------------------------------------------
    def _path(self, key: str = "") -> str:
        """The request's path, percent-encoded once (as S3 signs it). The bucket itself,
        path-style, is `/bucket` without a final slash, as AWS's SDKs send it (servers
        that normalize the path sign that)."""
        if self.path_style:
            bucket = f"{self.base_path}/{_quote(self.bucket)}"
            return f"{bucket}/{_quote(key, safe='/')}" if key else bucket
        return f"{self.base_path}/{_quote(key, safe='/')}"

    def request(self, method: str, key: str = "", query: Optional[dict[str, str]] = None, *,
                body: bytes = b"", body_file: Optional[BinaryIO] = None,
                body_size: int = 0, body_hash: str = "",
                into: Optional[BinaryIO] = None) -> tuple[int, bytes, str]:
        """One signed request (retried on a connection error or a 5xx answer): the status,
        the answer's body (streamed into `into` instead on success) and its ETag."""
        query = query or {}
        path = self._path(key)
        target = path + ("?" + "&".join(f"{_quote(k)}={_quote(v)}" if v else _quote(k)
                                        for k, v in sorted(query.items())) if query else "")
        payload_hash = body_hash if body_file is not None else sha256_hex(body)
        for attempt in range(1, ATTEMPTS + 1):
            start = body_file.tell() if body_file is not None else 0
            headers = sign(method, self.host, path, query, payload_hash, self.region,
                           self.credentials, datetime.datetime.now(datetime.timezone.utc))
            headers["content-length"] = str(body_size if body_file is not None else len(body))
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            connection = kind(self.host, timeout=TIMEOUT)
            try:
                connection.request(method, target, body=_limited(body_file, body_size)
                                   if body_file is not None else body, headers=headers)
                response = connection.getresponse()
                etag = response.getheader("ETag", "")
                if 200 <= response.status < 300 and into is not None:
                    for chunk in iter(lambda: response.read(MIB), b""):
                        into.write(chunk)
                    return response.status, b"", etag
                data = response.read()
                if response.status < 500 or attempt == ATTEMPTS:
                    return response.status, data, etag
            except (OSError, http.client.HTTPException) as error:
                if attempt == ATTEMPTS:
                    raise S3Error(f"{method} {self._show(key)}: {error}") from None
            finally:
                connection.close()
            if body_file is not None:
                body_file.seek(start)
            if into is not None:
                into.seek(0)
                into.truncate()
            time.sleep(2 * attempt)
        raise AssertionError("unreachable")

    def _show(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _check(self, what: str, status: int, data: bytes, ok: tuple[int, ...] = (200,)) -> bytes:
        error = None
        if data.lstrip().startswith(b"<"):
            try:
                root = ElementTree.fromstring(data)
            except ElementTree.ParseError:
                root = None
            if root is not None and _tag(root) == "Error":  # also inside a 200 (multipart)
                error = f"{_find(root, 'Code')}: {_find(root, 'Message')}"
        if status not in ok or error:
            raise S3Error(f"{what}: HTTP {status}" + (f" {error}" if error else ""))
        return data

    # -- what the backups need -------------------------------------------------------------
    def put(self, key: str, path: str, part_size: int = DEFAULT_PART_SIZE) -> int:
        size = os.path.getsize(path)
        part_size = max(part_size, MIN_PART_SIZE, -(-size // MAX_PARTS))
        with open(path, "rb") as file:
            if size <= part_size:
                digest = _file_hash(file, size)
                status, data, _ = self.request("PUT", key, body_file=file, body_size=size,
                                               body_hash=digest)
                self._check(f"PUT {self._show(key)}", status, data)
            else:
                self._put_parts(key, file, size, part_size)
        return size

    def _put_parts(self, key: str, file: BinaryIO, size: int, part_size: int) -> None:
        what = f"PUT {self._show(key)} (multipart)"
        status, data, _ = self.request("POST", key, {"uploads": ""})
        upload_id = _find(ElementTree.fromstring(self._check(what, status, data)), "UploadId")
        if not upload_id:
            raise S3Error(f"{what}: no UploadId in the answer")
        try:
            etags = []
            for number in range(1, -(-size // part_size) + 1):
                part = file.read(part_size)
                status, data, etag = self.request(
                    "PUT", key, {"partNumber": str(number), "uploadId": upload_id}, body=part)
                self._check(f"{what} part {number}", status, data)
                etags.append(etag)
            body = "<CompleteMultipartUpload>" + "".join(
                f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
                for n, etag in enumerate(etags, start=1)) + "</CompleteMultipartUpload>"
            status, data, _ = self.request("POST", key, {"uploadId": upload_id},
                                           body=body.encode())
            self._check(f"{what} complete", status, data)
        except BaseException:
            self.request("DELETE", key, {"uploadId": upload_id})  # abort: no parts left
            raise

    def get(self, key: str, path: str) -> int:
        partial = f"{path}.part"
        with open(partial, "wb") as file:
            status, data, _ = self.request("GET", key, into=file)
        if status != 200:
            os.unlink(partial)
            self._check(f"GET {self._show(key)}", status, data)
        os.replace(partial, path)
        return os.path.getsize(path)

    def list(self, prefix: str) -> Iterator[tuple[str, int, str]]:
        """(key, size, last modified) of every object under `prefix`, in key order."""
        token = None
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            status, data, _ = self.request("GET", "", query)
            root = ElementTree.fromstring(self._check(f"LIST {self._show(prefix)}", status,
                                                      data))
            for entry in root:
                if _tag(entry) == "Contents":
                    yield (_find(entry, "Key") or "", int(_find(entry, "Size") or 0),
                           _find(entry, "LastModified") or "")
            token = _find(root, "NextContinuationToken")
            if _find(root, "IsTruncated") != "true" or not token:
                return

    def delete(self, key: str) -> None:
        status, data, _ = self.request("DELETE", key)
        self._check(f"DELETE {self._show(key)}", status, data, ok=(200, 204))


def _file_hash(file: BinaryIO, size: int) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: file.read(MIB), b""):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


def _limited(file: BinaryIO, size: int) -> Iterator[bytes]:
    """The next `size` bytes of `file`, in chunks (http.client sends an iterable as is)."""
    left = size
    while left > 0:
        chunk = file.read(min(MIB, left))
        if not chunk:
            raise S3Error("the file became shorter while it was being sent")
        left -= len(chunk)
        yield chunk


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="djscale-s3", description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--region", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--path-style", action="store_true")
    parser.add_argument("--credentials", required=True)
    parser.add_argument("--part-size", type=int, default=DEFAULT_PART_SIZE)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, args in (("put", ("key", "file")), ("get", ("key", "file")),
                       ("list", ("prefix",)), ("delete", ("key",))):
        command = commands.add_parser(name)
        for arg in args:
            command.add_argument(arg)
    options = parser.parse_args(argv)
    try:
        bucket = Bucket(options.endpoint, options.region, options.bucket,
                        read_credentials(options.credentials), options.path_style)
        if options.command == "put":
            bucket.put(options.key, options.file, options.part_size)
        elif options.command == "get":
            bucket.get(options.key, options.file)
        elif options.command == "list":
            for key, size, modified in bucket.list(options.prefix):
                print(f"{key}\t{size}\t{modified}")
        else:
            bucket.delete(options.key)
    except (S3Error, OSError, ValueError, KeyError, ElementTree.ParseError) as error:
        print(f"djscale-s3: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
