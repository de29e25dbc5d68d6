"""The stores a fault cell runs against.

Each backend is reached two ways: ``ferry cp`` goes through a FaultProxy (configured only from
the environment, as a user without Airflow would), while the cell seeds sources and inspects
what a transfer left behind directly, with the store's own client and never through Ferry, so a
bug in Ferry cannot hide itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import boto3
import botocore.exceptions
import requests
from botocore.config import Config

from tests.servers.seaweedfs import S3Endpoint

BUCKET = "ferry-faults"
GCS_PROJECT = "ferry-faults"
COMPONENT_PREFIX = ".ferry/tmp/"  # where Ferry keeps temporary GCS components (its documented layout)
# Variables of the test process that must not leak into ferry cp: each backend sets its own.
_FOREIGN = ("AWS_", "GOOGLE_", "CLOUDSDK_", "STORAGE_EMULATOR_HOST", "AIRFLOW_CONN_")


@dataclass(frozen=True)
class Temporary:
    """An unfinished upload on a store: an S3 multipart upload or a temporary GCS component."""

    kind: str
    key: str
    upload_id: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.key}" + (f" ({self.upload_id})" if self.upload_id else "")


def base_env() -> dict[str, str]:
    """The environment of a ``ferry cp`` run before a backend adds its settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # never probe a cloud metadata server
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"  # an outer HTTP proxy must not intercept
    return env


class Backend:
    """A store as the matrix sees it: how ferry cp names and reaches it, and direct access."""

    name = ""  # short id used in test ids: s3, gcs, http
    title = ""  # row label
    writable = True
    has_buckets = True
    checks_credentials = True  # else wrong credentials are simulated: the proxy answers 401
    creates_missing_buckets = False  # a write to a missing bucket creates it (then the proxy answers 404)
    same_size_change_visible = True  # a same-size overwrite is detectable by a pinned read
    verified = "crc32c"  # the digest a verified download row names
    upload_method = "PUT"  # the method that carries upload data...
    upload_match = "partNumber="  # ...and what its path contains
    # A server-side copy within the store: the requests by which the store copies the bytes itself
    # (method, path substring), whether it copies in parts (else in one request), and its one
    # request with a body (method, path substring, body length at most): where a reset can strike.
    copy_request = ("PUT", "partNumber=")  # UploadPartCopy
    copies_in_parts = True
    copy_request_with_body = ("POST", "uploadId=", 64)  # CompleteMultipartUpload: an XML list of parts

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream

    def url(self, key: str, proxy_url: str) -> str:
        raise NotImplementedError

    def env(self, proxy_url: str) -> dict[str, str]:
        return base_env()

    def wrong_credentials_env(self, proxy_url: str) -> dict[str, str] | None:
        """ferry cp's environment with credentials the store rejects; None when it checks none."""
        return None

    def missing_bucket_url(self, key: str) -> str:
        raise NotImplementedError

    def missing_bucket_answer(self, bucket: str) -> bytes:
        """The body of the store's 404 for a missing bucket, for a proxy standing in for it."""
        return b""

    def download_match(self, key: str) -> str:
        """A path substring of the requests that carry an object's bytes to a reader."""
        return key

    def object_read_match(self, key: str) -> str:
        """A path substring of the requests that carry this one object's bytes to a reader, and
        no other object's (a bulk's faults strike one object of several)."""
        return self.download_match(key)

    def digest_args(self, data: bytes) -> list[str]:
        """ferry cp options a download needs to verify ``data`` (for stores that keep no digest)."""
        return []

    def seed(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no object."""
        raise NotImplementedError

    def temporaries(self) -> set[Temporary]:
        """Every unfinished upload (multipart upload, temporary component) in the bucket now."""
        return set()

    def discard(self, temporaries: set[Temporary]) -> None:
        """Remove what a failed cell left, once it is reported, so later cells start clean."""

    def bucket_exists(self, bucket: str) -> bool:
        return True

    def clear(self, prefix: str) -> None:
        """Delete every object under ``prefix``: a cell's data must not pile up on the server."""
        raise NotImplementedError


class S3Backend(Backend):
    name = "s3"
    title = "S3 (SeaweedFS)"
    # Started with -s3.autoCreateBucket=false, SeaweedFS answers NoSuchBucket as S3 does.
    creates_missing_buckets = False

    def __init__(self, endpoint: S3Endpoint) -> None:
        super().__init__(endpoint.url)
        self.endpoint = endpoint
        config = Config(request_checksum_calculation="when_required", response_checksum_validation="when_required")
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint.url,
            aws_access_key_id=endpoint.access_key,
            aws_secret_access_key=endpoint.secret_key,
            region_name=endpoint.region,
            config=config,
        )
        with contextlib.suppress(self.client.exceptions.BucketAlreadyOwnedByYou):
            self.client.create_bucket(Bucket=BUCKET)

    def url(self, key: str, proxy_url: str) -> str:
        return f"s3://{BUCKET}/{key}"

    def env(self, proxy_url: str, secret: str | None = None) -> dict[str, str]:
        env = base_env()
        env.update(
            AWS_ENDPOINT_URL=proxy_url,
            AWS_ACCESS_KEY_ID=self.endpoint.access_key,
            AWS_SECRET_ACCESS_KEY=secret or self.endpoint.secret_key,
            AWS_DEFAULT_REGION=self.endpoint.region,
            # No profile of this machine's user may add settings or credentials.
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        return env

    def wrong_credentials_env(self, proxy_url: str) -> dict[str, str]:
        return self.env(proxy_url, secret="not-the-secret-key")

    def missing_bucket_url(self, key: str) -> str:
        return f"s3://ferry-missing-{uuid.uuid4().hex[:12]}/{key}"

    def missing_bucket_answer(self, bucket: str) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchBucket</Code>'
            f"<Message>The specified bucket does not exist</Message><BucketName>{bucket}</BucketName>"
            f"<Resource>/{bucket}</Resource><RequestId>ferry-fault-proxy</RequestId></Error>"
        ).encode()

    def download_match(self, key: str) -> str:
        return f"/{BUCKET}/{key}"

    def seed(self, key: str, data: bytes) -> None:
        # With a stored CRC32C, as Ferry's own uploads and current SDKs leave objects.
        self.client.put_object(Bucket=BUCKET, Key=key, Body=data, ChecksumAlgorithm="CRC32C")

    def read(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def temporaries(self) -> set[Temporary]:
        found: set[Temporary] = set()
        for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=BUCKET):
            found.update(Temporary("multipart upload", u["Key"], u["UploadId"]) for u in page.get("Uploads", []))
        return found

    def discard(self, temporaries: set[Temporary]) -> None:
        for item in temporaries:
            with contextlib.suppress(botocore.exceptions.ClientError):
                self.client.abort_multipart_upload(Bucket=BUCKET, Key=item.key, UploadId=item.upload_id)

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self.client.head_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError:
            return False
        return True

    def clear(self, prefix: str) -> None:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for item in page.get("Contents", []):
                self.client.delete_object(Bucket=BUCKET, Key=item["Key"])


class GCSBackend(Backend):
    name = "gcs"
    title = "GCS (emulator)"
    checks_credentials = False  # the emulator accepts any request; ferry sends it no credentials
    same_size_change_visible = False  # the emulator ignores ifGenerationMatch and sends no hash on ranges
    upload_method = "POST"
    upload_match = "uploadType=multipart"  # component uploads, not compose
    copy_request = ("POST", "/rewriteTo/")  # a rewrite: one call on the emulator (it returns no token)
    copies_in_parts = False
    copy_request_with_body = ("POST", "/rewriteTo/", 1)  # its JSON body ("{}")

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint)
        resp = requests.post(
            f"{endpoint}/storage/v1/b", params={"project": GCS_PROJECT}, json={"name": BUCKET}, timeout=10
        )
        assert resp.status_code in (200, 409), resp.text

    def url(self, key: str, proxy_url: str) -> str:
        return f"gs://{BUCKET}/{key}"

    def env(self, proxy_url: str) -> dict[str, str]:
        env = base_env()
        env["STORAGE_EMULATOR_HOST"] = proxy_url
        return env

    def missing_bucket_url(self, key: str) -> str:
        return f"gs://ferry-missing-{uuid.uuid4().hex[:12]}/{key}"

    def download_match(self, key: str) -> str:
        return "alt=media"  # media reads; a metadata GET (Ferry's head) has none

    def object_read_match(self, key: str) -> str:
        return f"/o/{quote(key, safe='')}?alt=media"  # the name is in the path, alt=media first

    def _object(self, key: str, bucket: str = BUCKET) -> str:
        return f"{self.upstream}/storage/v1/b/{bucket}/o/{quote(key, safe='')}"

    def seed(self, key: str, data: bytes) -> None:
        resp = requests.post(
            f"{self.upstream}/upload/storage/v1/b/{BUCKET}/o",
            params={"uploadType": "media", "name": key},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=60,
        )
        assert resp.status_code == 200, resp.text

    def read(self, key: str) -> bytes | None:
        resp = requests.get(self._object(key), params={"alt": "media"}, timeout=60)
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        return resp.content

    def temporaries(self) -> set[str]:
        resp = requests.get(f"{self.upstream}/storage/v1/b/{BUCKET}/o", params={"prefix": COMPONENT_PREFIX}, timeout=30)
        assert resp.status_code == 200, resp.text
        return {f"component {item['name']}" for item in resp.json().get("items", [])}

    def bucket_exists(self, bucket: str) -> bool:
        return requests.get(f"{self.upstream}/storage/v1/b/{bucket}", timeout=10).status_code == 200

    def clear(self, prefix: str) -> None:
        # The emulator keeps objects in memory: a cell's must not accumulate over the matrix.
        resp = requests.get(f"{self.upstream}/storage/v1/b/{BUCKET}/o", params={"prefix": prefix}, timeout=30)
        for item in resp.json().get("items", []) if resp.status_code == 200 else []:
            requests.delete(self._object(item["name"]), timeout=30)


class HTTPBackend(Backend):
    name = "http"
    title = "HTTP server"
    writable = False  # a read-only source
    has_buckets = False
    checks_credentials = False  # a public server; ferry sends no credentials without --conn
    verified = "sha256"  # it keeps no digest: downloads are given --expected-digest

    def __init__(self, url: str, root: str) -> None:
        super().__init__(url)
        self.root = root

    def url(self, key: str, proxy_url: str) -> str:
        return f"{proxy_url}/{key}"

    def digest_args(self, data: bytes) -> list[str]:
        return ["--expected-digest", f"sha256={hashlib.sha256(data).hexdigest()}"]

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key)

    def seed(self, key: str, data: bytes) -> None:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".new", "wb") as f:
            f.write(data)
        os.replace(path + ".new", path)  # atomic: a reader sees the old file or the new one

    def read(self, key: str) -> bytes | None:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def clear(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)
