"""Hostile review of ``ferry sync [--delete] [--dry-run]`` and of manifests, against real servers
(SeaweedFS, the GCS emulator, local disk; faults through the real proxy or a hook that fails).

The promises under attack (README, docs/bulk.md, bulk.py, manifest_file.py):

- ``--delete`` removes destination objects the (filtered) source does not have, only when every
  object succeeded; it never deletes an object the source has, nothing outside the destination
  prefix, and never the run's own manifest kept under the destination.
- ``--dry-run`` changes nothing and says what would be transferred and deleted: what the real
  run then does.
- A manifest gets one row per object, written as each finishes (a crash loses no finished row);
  a rerun with it skips what it lists as ``OK``/``skip`` and finishes every object exactly once.

Tests marked ``PASSES (pins ...)`` hold on the current code and pin a promise worth keeping;
every other test fails on the current code and names the defect in its docstring.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest

from ferry_provider.hooks.errors import InvalidArgumentError, TransientError
from ferry_provider.hooks.gcs import FerryGCSHook
from ferry_provider.hooks.local import FerryLocalHook
from ferry_provider.hooks.s3 import FerryS3Hook
from ferry_provider.transfer.bulk import BulkOptions, BulkSummary, bulk_transfer
from ferry_provider.transfer.manifest import ManifestRow
from ferry_provider.transfer.manifest_file import parse_rows
from tests.conftest import PROXY_BUCKET, S3_CONN, bucket_hooks, make_gcs_bucket
from tests.servers.seaweedfs import S3Endpoint, start_seaweedfs
from tests.stores import crc32c_hex, unique_prefix
from tests.test_assume_role import IAM, READER, _aws
from tests.test_bulk import FAST_RETRY, FERRY, ferry, ferry_env, json_rows, local_files
from tests.test_review_bulk import proxy_env

BUCKET = "ferry-review-sync"  # on SeaweedFS and on the GCS emulator
LONG_KEY = "L" * 300 + "/x"  # a 300-byte segment: no Linux file system takes it as a path


# -- stores and helpers ----------------------------------------------------------------------------
s3, gcs = bucket_hooks(BUCKET)  # module fixtures


def s3_put(hook: FerryS3Hook, url: str, data: bytes) -> None:
    """Through the bare client: also folder markers (keys ending in '/'), which the hook refuses."""
    bucket, _, key = url[len("s3://") :].partition("/")
    hook.client.put_object(Bucket=bucket, Key=key, Body=data)


def s3_seed(hook: FerryS3Hook, base: str, objects: dict[str, bytes]) -> None:
    for relative, data in objects.items():
        s3_put(hook, base + relative, data)


def s3_tree(hook: FerryS3Hook, base: str) -> dict[str, bytes]:
    """Every object under ``base`` (relative key -> bytes), listed and read by the bare client,
    not by the hook under review: folder markers included."""
    bucket, _, prefix = base[len("s3://") :].partition("/")
    out = {}
    for page in hook.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = hook.client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            out[item["Key"][len(prefix) :]] = body
    return out


def gcs_tree(hook: FerryGCSHook, base: str) -> dict[str, bytes]:
    return {o.url[len(base) :]: hook.read_bytes(o.url) for o in hook.list(base)}


def sync(src_hook, dst_hook, src: str, dst: str, state_dir: str, **kw) -> tuple[BulkSummary, list[ManifestRow]]:
    """``bulk_transfer(..., delete_extraneous=True)``: the engine under ``ferry sync --delete``."""
    kw.setdefault("parallelism", 4)
    kw.setdefault("retry", FAST_RETRY)
    delete = kw.pop("delete", True)
    rows: list[ManifestRow] = []
    summary = bulk_transfer(
        src_hook,
        dst_hook,
        src,
        dst,
        BulkOptions(state_dir=state_dir, **kw),
        on_row=rows.append,
        delete_extraneous=delete,
    )
    return summary, rows


def write_tree(root, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = os.path.join(str(root), *relative.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def manifest_rows(path: str) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(parse_rows(f.read()))


# ==================================================================================================
# 1. What --delete may delete
# ==================================================================================================
@pytest.mark.parametrize(
    ("flag", "source", "destination_before", "kept_by_the_filter"),
    [
        # --max-size 100: grown.csv grew past the limit at the source; the destination still has
        # the 60-byte version an earlier sync copied.
        ("--max-size", {"keep.txt": b"k" * 50, "grown.csv": b"g" * 200}, {"grown.csv": b"g" * 60}, "grown.csv"),
        # --min-size 100: shrunk.csv shrank below the limit at the source.
        ("--min-size", {"keep.txt": b"k" * 150, "shrunk.csv": b"s" * 20}, {"shrunk.csv": b"s" * 120}, "shrunk.csv"),
    ],
    ids=["max-size", "min-size"],
)
def test_a_size_filter_never_deletes_an_object_the_source_has(
    seaweedfs, s3, state_dir, flag, source, destination_before, kept_by_the_filter
) -> None:
    """The filter is applied to the destination listing with the *destination's* sizes: an object
    the source has (excluded there by its own size) is admitted at the destination by the size of
    the older copy and deleted as "not at the source". Promise: --delete never deletes an object
    the source has; an object the filter excludes is not the filter's to delete."""
    prefix = unique_prefix()
    src, dst = f"s3://{BUCKET}/{prefix}src/", f"s3://{BUCKET}/{prefix}dst/"
    s3_seed(s3, src, source)
    s3_seed(s3, dst, {**destination_before, "gone.txt": b"x" * 110 if flag == "--min-size" else b"x"})
    out = ferry(seaweedfs, "sync", src, dst, "--delete", flag, "100", "--state-dir", state_dir, "-q")
    assert out.returncode == 0, out.stderr
    after = s3_tree(s3, dst)
    assert "gone.txt" not in after  # admitted by the filter and not at the source: deleted
    assert kept_by_the_filter in after, (
        f"{kept_by_the_filter} is at the source ({len(source[kept_by_the_filter])} bytes, outside {flag} 100) "
        f"and was deleted at the destination: {out.stdout}"
    )


def test_an_incremental_sync_with_modified_since_keeps_what_earlier_syncs_brought(
    seaweedfs, s3, tmp_path, state_dir
) -> None:
    """The daily pattern: a full sync, then ``sync --delete --modified-since <last run>``. The
    files the earlier sync wrote carry their download time (after ``since``), their source
    objects an older one: excluded at the source, admitted at the destination, and every one of
    them deleted although the source still has them all."""
    src = f"s3://{BUCKET}/{unique_prefix()}src/"
    objects = {"2026/old.csv": b"old rows", "2026/older.csv": b"older rows"}
    s3_seed(s3, src, objects)
    dest = tmp_path / "mirror"
    first = ferry(seaweedfs, "sync", src, str(dest), "--state-dir", state_dir, "-q")
    assert first.returncode == 0, first.stderr
    assert local_files(str(dest)) == objects
    since = max(o.last_modified for o in s3.list(src)) + timedelta(seconds=1)
    downloaded = since.timestamp() + 60  # the earlier sync ran after `since`, as a daily run does
    for relative in objects:
        os.utime(dest / relative, (downloaded, downloaded))
    again = ferry(
        seaweedfs, "sync", src, str(dest), "--delete", "--modified-since", since.isoformat(),
        "--state-dir", state_dir, "-q",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert local_files(str(dest)) == objects, f"objects the source has were deleted: {again.stdout}"


def test_sync_delete_from_a_source_prefix_with_no_objects_deletes_nothing(seaweedfs, s3, state_dir) -> None:
    """A mistyped (or emptied) source prefix lists nothing, and ``sync --delete`` then deletes
    every object at the destination, exit 0. A missing local source folder is refused
    ("source folder ... does not exist"), but on a store the same mistake wipes the mirror. A
    careful tool refuses (or at least deletes nothing) when the source lists no object at all;
    cf. aws-cli #1564 (a backup wiped by sync --delete from a source that did not exist) and
    rclone #1186/#1032."""
    prefix = unique_prefix()
    dst = f"s3://{BUCKET}/{prefix}mirror/"
    mirror = {"a.parquet": b"a" * 100, "b/c.parquet": b"c" * 200}
    s3_seed(s3, dst, mirror)
    s3_put(s3, f"s3://{BUCKET}/{prefix}raw/2026-11-23/x.bin", b"the real source has a date in its prefix")
    out = ferry(seaweedfs, "sync", f"s3://{BUCKET}/{prefix}raw/2026-11-32/", dst, "--delete", "--state-dir", state_dir)
    assert s3_tree(s3, dst) == mirror, f"exit {out.returncode}; {out.stdout} {out.stderr}"


@pytest.fixture(scope="module")
def role_store(workdir: str) -> Iterator[S3Endpoint]:
    """A SeaweedFS whose keys may do anything and may assume the read-only role FerryReader:
    the usual least-privilege set-up (read the source with a reader, write with a writer)."""
    proc, endpoint = start_seaweedfs(os.path.join(workdir, "seaweedfs-review-roles"), iam_config=IAM)
    os.environ["AIRFLOW_CONN_REVIEW_WRITER"] = _aws(endpoint, {})
    os.environ["AIRFLOW_CONN_REVIEW_READER"] = _aws(endpoint, {"role_arn": READER})
    try:
        FerryS3Hook("review_writer").client.create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        os.environ.pop("AIRFLOW_CONN_REVIEW_WRITER", None)
        os.environ.pop("AIRFLOW_CONN_REVIEW_READER", None)
        proc.stop(grace=3)


def test_nested_prefixes_through_a_reader_and_a_writer_connection_never_delete_the_source(
    role_store, state_dir
) -> None:
    """``sync s3://b/data/in/ s3://b/data/ --src-conn reader --dst-conn writer --delete``: one
    endpoint, one bucket, the source inside the destination. The overlap check only runs when
    both hooks have the same store identity (endpoint *and* credentials), so here it is skipped:
    the objects are copied up one level, then the destination listing shows ``in/a.txt`` and
    ``in/b.txt`` (not at the source's relative keys) and --delete deletes the source itself."""
    writer, reader = FerryS3Hook("review_writer"), FerryS3Hook("review_reader")
    prefix = unique_prefix()
    src, dst = f"s3://{BUCKET}/{prefix}data/in/", f"s3://{BUCKET}/{prefix}data/"
    objects = {"a.txt": b"a", "b.txt": b"bb"}
    s3_seed(writer, src, objects)
    with contextlib.suppress(InvalidArgumentError):  # refusing the nested prefixes is a fine answer
        sync(reader, writer, src, dst, state_dir)
    assert s3_tree(writer, src) == objects, "sync --delete deleted the objects of its own source"


def test_a_folder_marker_at_the_destination_does_not_stop_delete_half_way(seaweedfs, s3, state_dir) -> None:
    """The destination holds a folder marker (``m/``, what consoles create) the source lacks.
    Deleting it goes through ``hook.delete``, which refuses keys ending in '/' ("names no
    object"): the sync stops with exit 2 ("ferry: error", as if the arguments were bad) after
    deleting ``a-stale.txt`` and before ``z-stale.txt``."""
    prefix = unique_prefix()
    src, dst = f"s3://{BUCKET}/{prefix}src/", f"s3://{BUCKET}/{prefix}dst/"
    s3_seed(s3, src, {"a.txt": b"a"})
    s3_seed(s3, dst, {"a-stale.txt": b"s", "m/": b"", "z-stale.txt": b"z"})
    out = ferry(seaweedfs, "sync", src, dst, "--delete", "--state-dir", state_dir)
    after = s3_tree(s3, dst)
    assert out.returncode == 0, out.stderr
    assert set(after) - {"m/"} == {"a.txt"}, sorted(after)


def test_a_destination_file_with_a_tab_in_its_name_does_not_stop_delete(seaweedfs, s3, tmp_path, state_dir) -> None:
    """S3 -> a local folder holding ``odd\\tname.txt`` (any tool can write such a name). The
    delete phase parses every listed path as a URL, which refuses control characters: the sync
    fails with exit 2 "URL ... contains the control character" after the transfers, and the
    stale files stay. Local names are not URLs; the file is simply not at the source."""
    src = f"s3://{BUCKET}/{unique_prefix()}src/"
    s3_seed(s3, src, {"a.txt": b"a"})
    dest = tmp_path / "dest"
    write_tree(dest, {"odd\tname.txt": b"odd", "stale.txt": b"stale"})
    out = ferry(seaweedfs, "sync", src, str(dest), "--delete", "--state-dir", state_dir, "-q")
    assert out.returncode == 0, out.stderr
    assert set(local_files(str(dest))) - {"odd\tname.txt"} == {"a.txt"}


def test_sync_delete_keeps_what_it_wrote_through_a_symlinked_folder_inside_the_destination(
    s3, tmp_path, state_dir
) -> None:
    """A local mirror with ``current -> v2`` (a link inside the destination, which downloads
    accept). ``current/x.txt`` is downloaded through the link (OK row), the destination listing
    does not follow the link but sees ``v2/x.txt``, which the source lacks, and deletes it: after
    an all-OK sync --delete the destination no longer holds ``current/x.txt``."""
    src = f"s3://{BUCKET}/{unique_prefix()}src/"
    s3_seed(s3, src, {"current/x.txt": b"x", "top.txt": b"t"})
    dest = tmp_path / "dest"
    (dest / "v2").mkdir(parents=True)
    os.symlink("v2", dest / "current")
    summary, rows = sync(s3, FerryLocalHook(), src, str(dest), state_dir)
    assert {r.result for r in rows} == {"OK"}, [(r.source, r.description) for r in rows]
    assert (dest / "top.txt").read_bytes() == b"t"
    assert (dest / "current" / "x.txt").exists(), (
        f"an object the source has, written OK, was then deleted (deleted={summary.deleted})"
    )


def test_sync_delete_keeps_its_own_manifest_named_through_a_link_to_the_destination(
    seaweedfs, s3, tmp_path, state_dir
) -> None:
    """The manifest is kept in the destination folder, named through a symbolic link to it
    (``/alias/manifest.csv`` for ``/dest/``). The exclusion compares path strings, not files:
    the run deletes its own manifest, and the next run redoes everything."""
    src = f"s3://{BUCKET}/{unique_prefix()}src/"
    s3_seed(s3, src, {"a.txt": b"a"})
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(dest, tmp_path / "alias")
    manifest = tmp_path / "alias" / "manifest.csv"
    out = ferry(seaweedfs, "sync", src, str(dest), "--delete", "--manifest", str(manifest), "--state-dir", state_dir)
    assert out.returncode == 0, out.stderr
    assert (dest / "manifest.csv").exists(), f"the run deleted its own manifest: {out.stderr}"
    assert [(r["source"], r["result"]) for r in manifest_rows(str(manifest))] == [(src + "a.txt", "OK")]


def test_sync_delete_into_a_gcs_bucket_root_keeps_ferrys_temporary_components(s3, gcs, gcs_endpoint, state_dir) -> None:
    """Composite uploads keep their components under ``gs://BUCKET/.ferry/tmp/`` (Ferry's own
    state: ``ferry cleanup`` removes them only past an age, "young ones may belong to uploads
    still running", and the local store hides its temp files from listings). A sync --delete into
    the bucket root lists them as destination objects and deletes them at once, breaking the
    resume (or the run) of the upload they belong to."""
    bucket = "ferry-review-root"
    make_gcs_bucket(gcs_endpoint, bucket)
    component = f"gs://{bucket}/.ferry/tmp/0123456789abcdef_{'ab' * 8}/00001"
    part = b"part one of an upload still running"
    gcs.put(component, part, crc32c=crc32c_hex(part))
    src = f"s3://{BUCKET}/{unique_prefix()}src/"
    s3_seed(s3, src, {"a.txt": b"a"})
    sync(s3, gcs, src, f"gs://{bucket}/", state_dir)
    assert gcs.read_bytes(f"gs://{bucket}/a.txt") == b"a"
    assert [o.url for o in gcs.list(f"gs://{bucket}/.ferry/")] == [component], "an upload's component was deleted"


# -- PASSES (pins what --delete must never touch) ---------------------------------------------------
def test_sync_delete_s3_to_gcs_touches_nothing_outside_the_prefix_and_keeps_special_keys(s3, gcs, state_dir) -> None:
    """PASSES (pins: nothing outside the destination prefix; keys with '+', '%', spaces, '?',
    '#', unicode survive the round trip and a rerun deletes nothing). The destination is given
    without a trailing slash; its siblings ``dst2/``, ``dst.txt`` and ``dstx`` share the text
    prefix ``dst``."""
    prefix = unique_prefix()
    src = f"s3://{BUCKET}/{prefix}src/"
    base = f"gs://{BUCKET}/{prefix}"
    objects = {
        "a+b.txt": b"plus", "a b.txt": b"space", "100%.txt": b"percent", "%2B.txt": b"encoded",
        "q?.txt": b"question", "h#.txt": b"hash", "ü/é.txt": b"unicode", "deep/er/x.bin": os.urandom(3000),
    }  # fmt: skip
    s3_seed(s3, src, objects)
    siblings = {"dst2/keep.txt": b"k", "dst.txt": b"d", "dstx": b"x"}
    for relative, data in {**siblings, "dst/stale.txt": b"s", "dst/a+b.txt": b"old"}.items():
        gcs.put(base + relative, data, crc32c=crc32c_hex(data))
    summary, rows = sync(s3, gcs, src, base + "dst", state_dir)
    assert summary.errors == 0 and summary.deleted == 1, [(r.source, r.description) for r in rows]
    assert gcs_tree(gcs, base + "dst/") == objects
    assert {k: v for k, v in gcs_tree(gcs, base).items() if not k.startswith("dst/")} == siblings
    again, _ = sync(s3, gcs, src, base + "dst/", state_dir)
    assert again.deleted == 0 and dict(again.counts) == {"skip": len(objects)}


def test_sync_delete_local_to_s3_with_special_names(s3, tmp_path, state_dir) -> None:
    """PASSES (pins local -> S3: names with '+', '%', spaces, unicode map to the same relative
    keys on both sides, so --delete removes exactly the stale object and a rerun nothing)."""
    root = tmp_path / "src"
    files = {"a+b.txt": b"plus", "100%.txt": b"pct", "sp ace.txt": b"sp", "ü/é.txt": b"uni", "n/x.bin": b"n"}
    write_tree(root, files)
    dst = f"s3://{BUCKET}/{unique_prefix()}up/"
    s3_seed(s3, dst, {"stale.txt": b"s", "a b.txt": b"not a+b"})
    summary, rows = sync(FerryLocalHook(), s3, str(root), dst, state_dir)
    assert summary.errors == 0 and summary.deleted == 2, [(r.source, r.description) for r in rows]
    assert s3_tree(s3, dst) == files
    again, _ = sync(FerryLocalHook(), s3, str(root), dst, state_dir)
    assert again.deleted == 0 and dict(again.counts) == {"skip": len(files)}


def test_sync_delete_never_follows_links_out_of_a_local_destination(s3, tmp_path, state_dir) -> None:
    """PASSES (pins: a folder link and a file link inside the destination, both leading out of
    it; --delete may remove the links, never what they point to)."""
    src = f"s3://{BUCKET}/{unique_prefix()}src/"
    s3_seed(s3, src, {"a.txt": b"a"})
    outside = tmp_path / "outside"
    write_tree(outside, {"precious.db": b"do not delete", "sub/more.db": b"nor this"})
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "out")
    os.symlink(outside / "precious.db", dest / "link.db")
    summary, _ = sync(s3, FerryLocalHook(), src, str(dest), state_dir)
    assert summary.errors == 0
    assert local_files(str(outside)) == {"precious.db": b"do not delete", "sub/more.db": b"nor this"}
    assert (dest / "a.txt").read_bytes() == b"a"


def test_a_source_listing_failing_half_way_deletes_nothing(s3, state_dir) -> None:
    """PASSES (pins: the source listing dies after 3 objects; the run fails, nothing deleted)."""
    prefix = unique_prefix()
    src, dst = f"s3://{BUCKET}/{prefix}src/", f"s3://{BUCKET}/{prefix}dst/"
    s3_seed(s3, src, {f"k{i}.txt": b"k" for i in range(6)})
    s3_seed(s3, dst, {"k5.txt": b"k", "stale.txt": b"s"})

    class ListingDiesAfterThree(FerryS3Hook):
        def list(self, url: str, *, page_size: int = 1000) -> Iterator:
            for i, info in enumerate(super().list(url, page_size=page_size)):
                if i == 3 and "/src/" in url:
                    raise TransientError(f"{url}: listing page 2: connection reset by peer")
                yield info

    hook = ListingDiesAfterThree(S3_CONN)
    with pytest.raises(Exception, match="listing failed after"):
        sync(hook, hook, src, dst, state_dir)
    assert s3_tree(s3, dst) == {"k0.txt": b"k", "k1.txt": b"k", "k2.txt": b"k", "k5.txt": b"k", "stale.txt": b"s"}


def test_one_object_failing_s3_to_gcs_deletes_nothing(s3_proxy, gcs, state_dir) -> None:
    """PASSES (pins: S3 -> GCS, one object answered 500 on every read: an error row, the others
    copied, nothing deleted at the destination)."""
    proxied, direct, proxy = s3_proxy
    prefix = unique_prefix()
    src, dst = f"s3://{PROXY_BUCKET}/{prefix}src/", f"gs://{BUCKET}/{prefix}dst/"
    s3_seed(direct, src, {"good-1.txt": b"1", "bad-2.txt": b"2", "good-3.txt": b"3"})
    gcs.put(dst + "stale.txt", b"s")
    proxy.faults.error_status, proxy.faults.error_times, proxy.faults.only_path = 500, 10**6, "/bad-"
    summary, rows = sync(proxied, gcs, src, dst, state_dir)
    results = {r.source[len(src) :]: r.result for r in rows}
    assert results == {"good-1.txt": "OK", "bad-2.txt": "error", "good-3.txt": "OK"}
    assert summary.deleted == 0
    assert gcs_tree(gcs, dst) == {"good-1.txt": b"1", "good-3.txt": b"3", "stale.txt": b"s"}


# ==================================================================================================
# 2. --dry-run says what the real run then does
# ==================================================================================================
DRY_TRANSFER = re.compile(r"^would transfer (.+) -> (.*) \((.+)\)$")
DRY_DELETE = re.compile(r"^would delete (.+) \(not at the source\)$")


def _case_identical_file_s3_to_local(seaweedfs, s3, tmp_path, state_dir) -> tuple[str, str, list[str]]:
    """a.txt is at the destination with the source's bytes: the real run skips it (digest)."""
    src = f"s3://{BUCKET}/{unique_prefix()}src/"
    s3_seed(s3, src, {"a.txt": b"identical", "b.txt": b"new"})
    dest = tmp_path / "dest"
    write_tree(dest, {"a.txt": b"identical"})
    return src, str(dest) + "/", []


def _case_a_refused_key_s3_to_local(seaweedfs, s3, tmp_path, state_dir) -> tuple[str, str, list[str]]:
    """A key that cannot be a local path: the real run has an error row, so deletes nothing."""
    src = f"s3://{BUCKET}/{unique_prefix()}src/"
    s3_seed(s3, src, {"a.txt": b"a", LONG_KEY: b"long"})
    dest = tmp_path / "dest"
    write_tree(dest, {"stale.txt": b"stale"})
    return src, str(dest) + "/", []


def _case_a_folder_marker_s3_to_s3(seaweedfs, s3, tmp_path, state_dir) -> tuple[str, str, list[str]]:
    """A folder marker at the source: the real run skips it ("nothing to transfer")."""
    prefix = unique_prefix()
    src, dst = f"s3://{BUCKET}/{prefix}src/", f"s3://{BUCKET}/{prefix}dst/"
    s3_seed(s3, src, {"a.txt": b"a", "dir/": b""})
    s3_seed(s3, dst, {"a.txt": b"a"})
    return src, dst, []


def _case_a_manifest_listing_a_changed_object(seaweedfs, s3, tmp_path, state_dir) -> tuple[str, str, list[str]]:
    """The manifest of an earlier sync lists a.txt OK; a.txt has changed at the source since."""
    prefix = unique_prefix()
    src, dst = f"s3://{BUCKET}/{prefix}src/", f"s3://{BUCKET}/{prefix}dst/"
    s3_seed(s3, src, {"a.txt": b"version 1", "b.txt": b"b"})
    manifest = str(tmp_path / "sync.csv")
    first = ferry(seaweedfs, "sync", src, dst, "--manifest", manifest, "--state-dir", state_dir, "-q")
    assert first.returncode == 0, first.stderr
    s3_seed(s3, src, {"a.txt": b"version 2, longer"})
    return src, dst, ["--manifest", manifest]


DRY_CASES = {
    "identical-file-s3-to-local": _case_identical_file_s3_to_local,
    "refused-key-so-nothing-deleted": _case_a_refused_key_s3_to_local,
    "folder-marker-s3-to-s3": _case_a_folder_marker_s3_to_s3,
    "manifest-lists-a-changed-object": _case_a_manifest_listing_a_changed_object,
}


def _destination_names(s3, dst: str) -> set[str]:
    if dst.startswith("s3://"):
        return {dst + k for k in s3_tree(s3, dst)}
    return {dst + k for k in local_files(dst)}


@pytest.mark.parametrize("case", list(DRY_CASES))
def test_dry_run_says_what_the_real_run_then_does(seaweedfs, s3, tmp_path, state_dir, case: str) -> None:
    """``sync --delete --dry-run`` then ``sync --delete``: the objects the dry run says it would
    transfer are those the real run transfers (OK rows), and those it says it would delete are
    those the real run deletes. Observed: identical-file-s3-to-local: the local listing has no
    digest, so every existing file "differs", while the real run skips it by its digest;
    refused-key: the dry run lists deletes although a refused key fails an object, after which
    the real run deletes nothing; folder-marker: "would transfer dir/ (missing at the
    destination)" on every dry run, while the real run skips markers; manifest: the dry run
    ignores the manifest, the real run skips what it lists (so the changed a.txt is never sent)."""
    src, dst, flags = DRY_CASES[case](seaweedfs, s3, tmp_path, state_dir)
    before = _destination_names(s3, dst)
    dry = ferry(seaweedfs, "sync", src, dst, "--delete", "--dry-run", "--state-dir", state_dir, "-q", *flags)
    assert dry.returncode == 0, dry.stderr
    assert _destination_names(s3, dst) == before, "the dry run changed the destination"
    would_transfer, would_delete = set(), set()
    for line in dry.stdout.splitlines():
        if (m := DRY_TRANSFER.match(line)) and not m[3].startswith("refused"):
            would_transfer.add(m[1])
        elif m := DRY_DELETE.match(line):
            would_delete.add(m[1])
    real = ferry(seaweedfs, "sync", src, dst, "--delete", "--json", "--state-dir", state_dir, "-q", *flags)
    transferred = {r["source"] for r in json_rows(real.stdout) if r["result"] == "OK"}
    deleted = before - _destination_names(s3, dst)
    assert (would_transfer, would_delete) == (transferred, deleted), (
        f"dry run: transfer {sorted(would_transfer)}, delete {sorted(would_delete)}; "
        f"real run: transferred {sorted(transferred)}, deleted {sorted(deleted)}"
    )


# ==================================================================================================
# 3. Manifests
# ==================================================================================================
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_torn_last_manifest_line_loses_no_later_row(s3, tmp_path, state_dir, fmt: str) -> None:
    """A run killed mid-write leaves half a row without its line break (parse_rows expects
    this: "a torn last line from a crash"). The rerun appends its first row right after the torn
    text, on the same line, so that finished row is unreadable: the manifest never lists c.txt
    as done, and every later run redoes it (and loses its row again)."""
    src = f"s3://{BUCKET}/{unique_prefix()}src/"
    objects = {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c"}
    s3_seed(s3, src, objects)
    dest, manifest = str(tmp_path / "dest") + "/", str(tmp_path / f"m.{fmt}")
    sync(s3, FerryLocalHook(), src, dest, state_dir, manifest=manifest, concurrency=1, delete=False)
    with open(manifest, newline="") as f:
        lines = f.read().splitlines(keepends=True)
    assert len(lines) == 3 + (fmt == "csv") and src + "c.txt" in lines[-1]
    with open(manifest, "w", newline="") as f:
        f.write("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # killed while writing c's row
    rerun, _ = sync(s3, FerryLocalHook(), src, dest, state_dir, manifest=manifest, concurrency=1, delete=False)
    assert rerun.already_done == 2 and sum(rerun.counts.values()) == 1
    done = {r["source"] for r in manifest_rows(manifest) if r.get("result") in ("OK", "skip")}
    assert done == {src + k for k in objects}, f"c.txt's row of the rerun was lost: {sorted(done)}"
    third, _ = sync(s3, FerryLocalHook(), src, dest, state_dir, manifest=manifest, concurrency=1, delete=False)
    assert third.already_done == 3 and sum(third.counts.values()) == 0
    assert local_files(dest) == objects


@pytest.mark.parametrize("where", ["local", "s3"])
def test_two_runs_sharing_one_manifest_list_each_object_once(
    seaweedfs, s3_proxy, tmp_path, state_dir, where: str
) -> None:
    """Run A (through the proxy, one object at a time) finishes obj-0 and obj-1, then its GET of
    obj-2 is held; run B starts with the same manifest and destination. An object-URL manifest
    is locked (its spool), so B fails at once and A alone finishes: one row per object (PASSES
    for "s3"). A local manifest has no lock: B skips obj-0/1, fails obj-2 (destination busy),
    copies obj-3..5; A then finishes obj-2 and writes obj-3..5 again as skip rows. The manifest
    lists obj-2..5 twice (FAILS for "local")."""
    _, direct, proxy = s3_proxy
    prefix = unique_prefix()
    base = f"s3://{PROXY_BUCKET}/{prefix}src/"
    objects = {f"obj-{i}.dat": os.urandom(100 + i) for i in range(6)}
    s3_seed(direct, base, objects)
    manifest = str(tmp_path / "shared.csv") if where == "local" else f"s3://{PROXY_BUCKET}/{prefix}shared.csv"
    dest = str(tmp_path / "dest") + "/"
    argv = [*FERRY, "cp", "-r", base, dest, "--manifest", manifest, "--state-dir", state_dir, "-q"]
    argv += ["--concurrency", "1"]
    proxy.faults.stall_methods, proxy.faults.stall_times = ("GET",), 1
    proxy.faults.stall_after_requests, proxy.faults.stall_seconds = 2, 90
    proxy.faults.only_path = "/obj-"
    run_a = subprocess.Popen(argv, env=proxy_env(seaweedfs, proxy), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proxy.wait_until(lambda p: p.held >= 1, 60), "run A never reached obj-2"
        run_b = subprocess.run(argv, env=ferry_env(seaweedfs), capture_output=True, text=True, timeout=120)
    finally:
        proxy.release_stalls()
        _, a_err = run_a.communicate(timeout=120)
    assert run_a.returncode == 0, a_err
    rows = list(parse_rows(direct.read_bytes(manifest).decode())) if where == "s3" else manifest_rows(manifest)
    per_object = Counter(r["source"][len(base) :] for r in rows)
    assert per_object == dict.fromkeys(objects, 1), f"rows per object: {dict(per_object)}; run B: {run_b.stderr}"
    assert {r["result"] for r in rows} <= {"OK", "skip"}
    assert local_files(dest) == objects


def test_a_manifest_kept_inside_the_local_source_folder_is_not_synced_as_data(
    seaweedfs, s3, tmp_path, state_dir
) -> None:
    """Local -> S3 with ``--manifest`` inside the source folder. The run's own manifest is listed
    as a source object while the run appends to it: its upload fails ("changed while
    uploading"), so the first sync exits 1 and --delete never runs; a later run uploads a stale
    copy of the manifest as data. The run excludes its manifest from deletes at the destination;
    it should equally not take it for data at the source."""
    root = tmp_path / "src"
    files = {f"f{i:02d}.txt": b"x" * (i + 1) for i in range(12)}
    write_tree(root, files)
    manifest = root / "zz-manifest.csv"
    dst = f"s3://{BUCKET}/{unique_prefix()}up/"
    s3_seed(s3, dst, {"stale.txt": b"s"})
    argv = ["sync", str(root), dst, "--delete", "--manifest", str(manifest), "--state-dir", state_dir, "-q"]
    out = ferry(seaweedfs, *argv)
    assert out.returncode == 0, out.stderr
    assert s3_tree(s3, dst) == files, f"{out.stdout} {out.stderr}"


def test_manifest_rows_of_keys_with_commas_quotes_and_unicode_let_a_rerun_skip_them(s3, tmp_path, state_dir) -> None:
    """PASSES (pins CSV quoting: keys with ',', '"', ';', unicode and a leading '=' are one row
    each, read back exactly, and a rerun lists every object as already done)."""
    src = f"s3://{BUCKET}/{unique_prefix()}src/"
    objects = {"a,b.txt": b"1", 'say "hi".txt': b"2", "x;y,z/ü,ß.txt": b"3", "=HYPERLINK(1).csv": b"4"}
    s3_seed(s3, src, objects)
    dest, manifest = str(tmp_path / "dest") + "/", str(tmp_path / "m.csv")
    first, _ = sync(s3, FerryLocalHook(), src, dest, state_dir, manifest=manifest, delete=False)
    assert dict(first.counts) == {"OK": len(objects)}
    rows = manifest_rows(manifest)
    assert sorted(r["source"] for r in rows) == sorted(src + k for k in objects)
    assert all(r["destination"] == dest + r["source"][len(src) :] for r in rows)
    again, again_rows = sync(s3, FerryLocalHook(), src, dest, state_dir, manifest=manifest, delete=False)
    assert again.already_done == len(objects) and again_rows == []
    assert local_files(dest) == objects


def test_a_manifest_of_another_pair_makes_nothing_skip(s3, tmp_path, state_dir) -> None:
    """PASSES (pins: rows are keyed by source *and* destination: a manifest written for
    src -> A, reused for src -> B, makes nothing at B count as done)."""
    src = f"s3://{BUCKET}/{unique_prefix()}src/"
    objects = {"a.txt": b"a", "n/b.txt": b"b"}
    s3_seed(s3, src, objects)
    manifest = str(tmp_path / "m.jsonl")
    first_dest, other_dest = str(tmp_path / "A") + "/", str(tmp_path / "B") + "/"
    sync(s3, FerryLocalHook(), src, first_dest, state_dir, manifest=manifest, delete=False)
    other, _ = sync(s3, FerryLocalHook(), src, other_dest, state_dir, manifest=manifest, delete=False)
    assert other.already_done == 0 and dict(other.counts) == {"OK": len(objects)}
    assert local_files(other_dest) == objects
    assert Counter(r["destination"][: len(other_dest)] == other_dest for r in manifest_rows(manifest)) == {
        True: 2,
        False: 2,
    }
