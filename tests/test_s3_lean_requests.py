"""S3 GETs and listings signed and parsed by Ferry itself (s3_sigv4, s3_list_page), outside
botocore's request pipeline: the specification's example, and real requests to SeaweedFS (which
checks every signature) for keys botocore would encode differently if the two disagreed."""

from __future__ import annotations

import calendar
import hashlib
import os
from datetime import UTC, datetime

import pytest

from ferry_provider.hooks.errors import FerryError, NotFoundError, PreconditionFailedError, SourceChangedError
from ferry_provider.hooks.s3_list_page import parse_list_page
from ferry_provider.hooks.s3_sigv4 import BucketTarget, SigV4Signer
from tests.conftest import S3_CONN, make_s3_bucket
from tests.servers.rewriting_proxy import RewritingProxy
from tests.stores import unique_prefix

BUCKET = "ferry-lean"
EXAMPLE_KEYS = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None)


def test_signature_matches_the_specifications_example() -> None:
    """AWS's worked example for header authorization (GET /test.txt, first 10 bytes)."""
    target = BucketTarget(
        "https", "examplebucket.s3.amazonaws.com", "examplebucket.s3.amazonaws.com", None, "", "us-east-1", "s3"
    )
    path, headers = SigV4Signer().sign(
        "GET",
        target,
        target.path("test.txt"),
        {},
        {"Range": "bytes=0-9"},
        EXAMPLE_KEYS,
        now=calendar.timegm((2013, 5, 24, 0, 0, 0)),
    )
    assert path == "/test.txt"
    assert headers["x-amz-date"] == "20130524T000000Z"
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_session_token_is_sent_and_signed_and_the_query_canonical() -> None:
    target = BucketTarget("http", "h:9000", "h", 9000, "/b", "eu-west-1", "s3")
    path, headers = SigV4Signer().sign(
        "GET", target, target.path("a b/c+d~e"), {"versionId": "v/1+2", "a": "x"}, {}, ("AK", "SK", "TOKEN")
    )
    assert path == "/b/a%20b/c%2Bd~e?a=x&versionId=v%2F1%2B2"
    assert headers["x-amz-security-token"] == "TOKEN"
    assert "host;x-amz-content-sha256;x-amz-date;x-amz-security-token" in headers["authorization"]
    assert "/eu-west-1/s3/aws4_request" in headers["authorization"]


def test_target_learnt_from_a_presigned_url() -> None:
    url = (
        "http://127.0.0.1:8333/bkt/ferry-sigv4-probe?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=00"
    )
    target = BucketTarget.from_presigned(url)
    assert target == BucketTarget("http", "127.0.0.1:8333", "127.0.0.1", 8333, "/bkt", "us-east-1", "s3")
    assert target.path("k/../x") == "/bkt/k/../x"  # dot segments are part of the key, kept
    assert BucketTarget.from_presigned("http://h/bkt/other?X-Amz-Credential=a") is None


PAGE = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>p%2F</Prefix><KeyCount>2</KeyCount><IsTruncated>true</IsTruncated>
  <EncodingType>url</EncodingType>
  <NextContinuationToken>tok+en/=</NextContinuationToken>
  <Contents><Key>p/a+b%2Bc%20d</Key><LastModified>2026-11-24T03:33:57.000Z</LastModified>
    <ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag><Size>1</Size></Contents>
  <Contents><Key>p/empty</Key><LastModified>2026-11-24T03:33:58Z</LastModified><Size>0</Size></Contents>
</ListBucketResult>"""


def test_list_page_decodes_keys_digests_and_times() -> None:
    page = parse_list_page(PAGE)
    assert [o.key for o in page.objects] == ["p/a b+c d", "p/empty"]
    assert page.objects[0].etag == "0cc175b9c0f1b6a831c399e269772661"
    assert page.objects[0].last_modified == datetime(2026, 11, 24, 3, 33, 57, tzinfo=UTC)
    assert (page.objects[1].size, page.objects[1].etag) == (0, None)
    assert page.next_token == "tok+en/="
    # Without <EncodingType>, the store did not encode them: keys are taken as they are.
    plain = parse_list_page(PAGE.replace(b"<EncodingType>url</EncodingType>", b""))
    assert [o.key for o in plain.objects] == ["p/a+b%2Bc%20d", "p/empty"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<Error><Code>x</Code></Error>", "not a listing"),
        (b"not xml", "not XML"),
        (b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", "without a continuation token"),
    ],
)
def test_list_page_refuses_what_is_not_one(body: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_list_page(body)


AWKWARD_KEYS = ["plain", "a b", "plus+sign", "per%cent", "tilde~", "eq=amp&q?", "ümlaut/ñ", "dots..x", "deep/a/b/c"]


@pytest.fixture
def s3_prefix(seaweedfs) -> tuple[object, str]:
    from ferry_provider.hooks.s3 import FerryS3Hook

    make_s3_bucket(seaweedfs, BUCKET)
    return FerryS3Hook(S3_CONN), unique_prefix()


def test_awkward_keys_list_and_read_back_exactly(s3_prefix) -> None:
    hook, prefix = s3_prefix
    client = hook.client
    for i, key in enumerate(AWKWARD_KEYS):
        client.put_object(Bucket=BUCKET, Key=prefix + key, Body=f"{i}:{key}".encode())
    listed = {info.url: info for info in hook.list(f"s3://{BUCKET}/{prefix}", page_size=3)}
    assert hook._lean_http._targets[BUCKET] is not None  # signed by Ferry, not by botocore's fallback
    assert sorted(listed) == sorted(f"s3://{BUCKET}/{prefix}{k}" for k in AWKWARD_KEYS)
    for i, key in enumerate(AWKWARD_KEYS):
        url = f"s3://{BUCKET}/{prefix}{key}"
        info = listed[url]
        with hook.open_range(url, 0, None, info) as reader:
            assert reader.read() == f"{i}:{key}".encode()
        with hook.open_range(url, 1, 3) as reader:
            assert reader.read() == f"{i}:{key}".encode()[1:3]
        # botocore, asked the same, agrees on size and ETag
        head = client.head_object(Bucket=BUCKET, Key=prefix + key)
        assert (info.size, info.etag) == (head["ContentLength"], head["ETag"].strip('"'))


def test_lean_errors_are_mapped_as_botocores(s3_prefix) -> None:
    hook, prefix = s3_prefix
    url = f"s3://{BUCKET}/{prefix}x"
    with pytest.raises(NotFoundError):
        hook.open_range(url)
    hook.client.put_object(Bucket=BUCKET, Key=prefix + "x", Body=b"one")
    stale = hook.head(url)
    hook.client.put_object(Bucket=BUCKET, Key=prefix + "x", Body=b"two")
    with pytest.raises(SourceChangedError):
        hook.open_range(url, 0, None, stale)
    assert list(hook.list(f"s3://{BUCKET}/{prefix}nothing/")) == []
    with pytest.raises(NotFoundError):
        list(hook.list("s3://ferry-no-such-bucket/"))


def test_lean_put_carries_checksum_metadata_and_conditions(s3_prefix, tmp_path) -> None:
    from tests.stores import crc32c_hex

    hook, prefix = s3_prefix
    data = os.urandom(3 * 1024 * 1024 + 5)  # several send blocks
    url = f"s3://{BUCKET}/{prefix}put"
    path = tmp_path / "body"
    path.write_bytes(data)
    with open(path, "rb") as f:
        info = hook.put(
            url,
            f,
            size=len(data),
            crc32c=crc32c_hex(data),
            metadata={"origin": "t"},
            content_type="x/y",
            if_absent=True,
        )
    assert hook._lean_http._targets[BUCKET] is not None
    assert (info.size, info.crc32c, info.md5) == (len(data), crc32c_hex(data), hashlib.md5(data).hexdigest())
    head = hook.head(url)
    assert (head.crc32c, head.metadata, head.content_type) == (crc32c_hex(data), {"origin": "t"}, "x/y")
    assert hook.read_bytes(url) == data
    with pytest.raises(PreconditionFailedError):
        hook.put(url, b"second", crc32c=crc32c_hex(b"second"), if_absent=True)
    # Bytes that do not match the CRC32C sent with them are refused, and nothing is stored.
    with pytest.raises(FerryError):
        hook.put(f"s3://{BUCKET}/{prefix}bad", b"payload", crc32c=crc32c_hex(b"other"))
    with pytest.raises(NotFoundError):
        hook.head(f"s3://{BUCKET}/{prefix}bad")
    assert hook.read_bytes(url) == data


# -- hostile review: what botocore does that the lean requests do not ----------------------------


def test_lean_put_signs_header_values_with_runs_of_whitespace(s3_prefix) -> None:
    """SigV4 canonical headers squeeze runs of spaces (botocore and the store do): a metadata value
    or content type with two spaces or a tab is stored by botocore, refused as a bad signature
    (PermissionDeniedError) when Ferry signs it."""
    from tests.stores import crc32c_hex

    hook, prefix = s3_prefix
    url = f"s3://{BUCKET}/{prefix}spaced"
    metadata = {"note": "two  spaces", "tabbed": "a\tb"}
    info = hook.put(url, b"body", crc32c=crc32c_hex(b"body"), metadata=metadata, content_type="text/plain;  x=1")
    assert info.size == 4
    assert hook.head(url).metadata == metadata


def test_lean_put_header_injection_is_a_ferry_error(s3_prefix) -> None:
    """A metadata value with CR/LF: botocore's put gives a FerryError; the lean PUT a bare
    ValueError from http.client (no Ferry error class, so no mapping or row reason)."""
    from tests.stores import crc32c_hex

    hook, prefix = s3_prefix
    with pytest.raises(FerryError):
        hook.put(f"s3://{BUCKET}/{prefix}crlf", b"x", crc32c=crc32c_hex(b"x"), metadata={"a": "v\r\nX-Evil: 1"})


@pytest.fixture
def proxied_hook(seaweedfs, monkeypatch):
    """hook_for(**proxy options): a FerryS3Hook reaching SeaweedFS through a RewritingProxy."""
    import json

    from ferry_provider.hooks.s3 import FerryS3Hook

    make_s3_bucket(seaweedfs, BUCKET)
    proxies: list[RewritingProxy] = []

    def hook_for(**options):
        proxy = RewritingProxy(seaweedfs.url, **options)
        proxies.append(proxy)
        conn = json.loads(seaweedfs.connection_json())
        conn["extra"]["endpoint_url"] = proxy.url
        monkeypatch.setenv("AIRFLOW_CONN_FERRY_LEAN_PROXY", json.dumps(conn))
        return FerryS3Hook("ferry_lean_proxy")

    yield hook_for
    for proxy in proxies:
        proxy.stop()


def test_lean_requests_follow_a_bucket_region_as_botocore_does(s3_prefix, proxied_hook) -> None:
    """The connection says us-east-1, the bucket is in eu-west-2: botocore follows S3's
    AuthorizationHeaderMalformed (Region, x-amz-bucket-region) and re-signs for eu-west-2; the
    lean list, GET and PUT keep the region of the probe's presigned URL and fail with
    InvalidArgumentError. (Listing and PUT went through botocore, and worked, before this change.)"""
    from tests.stores import crc32c_hex

    direct, prefix = s3_prefix
    direct.client.put_object(Bucket=BUCKET, Key=prefix + "obj", Body=b"data")
    hook = proxied_hook(region="eu-west-2")
    client = hook.client
    assert [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]] == [prefix + "obj"]
    assert client.get_object(Bucket=BUCKET, Key=prefix + "obj")["Body"].read() == b"data"
    assert [i.url for i in hook.list(f"s3://{BUCKET}/{prefix}")] == [f"s3://{BUCKET}/{prefix}obj"]
    hook.put(f"s3://{BUCKET}/{prefix}put", b"x", crc32c=crc32c_hex(b"x"))
    with hook.open_range(f"s3://{BUCKET}/{prefix}obj") as reader:
        assert reader.read() == b"data"


def _ignore_encoding_type(path: str, body: bytes) -> bytes:
    """A store that does not implement encoding-type=url: keys come back as they are, and no
    <EncodingType> element says they were encoded."""
    import re
    from urllib.parse import unquote_plus

    if "list-type=2" not in path:
        return body
    body = re.sub(rb"<Key>(.*?)</Key>", lambda m: b"<Key>" + unquote_plus(m[1].decode()).encode() + b"</Key>", body)
    return body.replace(b"<EncodingType>url</EncodingType>", b"")


def test_lean_list_decodes_keys_only_when_the_store_says_it_encoded_them(s3_prefix, proxied_hook) -> None:
    """botocore unquotes listed keys only when the answer carries <EncodingType>url</EncodingType>;
    the lean parser always does, so on a store that ignores encoding-type 'a+b' is listed as 'a b'
    and '100%25' as '100%': two keys repeated, two skipped."""
    direct, prefix = s3_prefix
    keys = ["a+b", "a b", "100%25", "100%"]
    for key in keys:
        direct.client.put_object(Bucket=BUCKET, Key=prefix + key, Body=key.encode())
    hook = proxied_hook(rewrite=_ignore_encoding_type)
    listed = [o["Key"] for o in hook.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
    assert sorted(listed) == sorted(prefix + k for k in keys)  # botocore
    assert sorted(i.url for i in hook.list(f"s3://{BUCKET}/{prefix}")) == sorted(
        f"s3://{BUCKET}/{prefix}{k}" for k in keys
    )


def test_lean_list_stops_when_the_continuation_token_repeats(s3_prefix, proxied_hook) -> None:
    """A store whose NextContinuationToken never advances: botocore's paginator raises
    PaginationError ('The same next token was received twice') after the second page; the lean
    listing requests the same page forever, repeating its keys without end."""
    direct, prefix = s3_prefix
    for key in ("a", "b", "c"):
        direct.client.put_object(Bucket=BUCKET, Key=prefix + key, Body=b"1")
    first: dict[str, bytes] = {}

    def stuck(path: str, body: bytes) -> bytes:
        if "list-type=2" not in path:
            return body
        first.setdefault(
            "page",
            body.replace(
                b"<IsTruncated>false</IsTruncated>",
                b"<IsTruncated>true</IsTruncated><NextContinuationToken>same</NextContinuationToken>",
            ),
        )
        return first["page"]

    hook = proxied_hook(rewrite=stuck)
    with pytest.raises(FerryError):
        for count, _ in enumerate(hook.list(f"s3://{BUCKET}/{prefix}"), 1):
            assert count <= 30, "the listing repeats the same page without end"
