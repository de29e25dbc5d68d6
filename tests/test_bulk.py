"""Bulk prefix transfers (issue #13), against real servers: SeaweedFS, the GCS emulator, local disk.

What every bulk run must show: one row per object, each ``OK`` (or ``skip`` when the destination
already holds it), the destination holding exactly the source's bytes under the same relative
keys, a second run all ``skip``, and nothing left behind (no tracker or spool in ``state_dir``, no
temp file beside a local destination, no multipart upload, no temporary GCS component). Keys that
cannot be a local path are ``error`` rows and nothing is written outside the destination folder.

The large fixture (a 100 MiB object, 1,000 small ones, nested keys, an empty object) is built and
seeded once for the module; the five directions run from it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest

from ferry_provider.hooks.local import FerryLocalHook
from ferry_provider.transfer.bulk import BulkOptions, BulkSummary, bulk_transfer
from ferry_provider.transfer.listing import Listed, ListFilter
from ferry_provider.transfer.manifest import ManifestRow
from ferry_provider.transfer.manifest_file import parse_rows
from ferry_provider.transfer.retry import RetryPolicy
from tests.conftest import PROXY_BUCKET, S3_CONN, bucket_hooks
from tests.stores import MiB, crc32c_hex, unique_prefix

BUCKET = "ferry-bulk"  # on SeaweedFS and on the GCS emulator
COMPONENTS = ".ferry/tmp/"  # where GCS temporary components live, per bucket
BIG = 100 * MiB + 7  # the one large object: many parts, an odd tail
SMALL = 1000  # small objects of 1-4 KiB
FAST_RETRY = RetryPolicy(attempts=3, initial_wait=0.05, max_wait=0.2)
FERRY = [sys.executable, "-m", "ferry_provider.cli"]
GSUTIL_HEADER = "Source,Destination,Start,End,Md5,UploadId,Source Size,Bytes Transferred,Result,Description,Crc32c"
REFUSED_KEY = re.compile(r"cannot be a file below")


# -- data, stores and helpers -----------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus() -> dict[str, bytes]:
    """Relative key -> bytes: nested keys, an empty object, a 100 MiB object, 1,000 small ones."""
    objects = {
        "empty.bin": b"",
        "nested/top.txt": b"top of the tree\n",
        "nested/a/b/c/deep.txt": os.urandom(777),
        "nested/a/b/sibling.json": b'{"k": 1}\n',
        "big/big.bin": os.urandom(BIG),
    }
    sizes = os.urandom(SMALL)
    for i in range(SMALL):
        objects[f"small/{i % 10}/obj-{i:04d}.dat"] = os.urandom(1024 + sizes[i] * 12)
    return objects


s3, gcs = bucket_hooks(BUCKET)  # module fixtures


def seed_all(hook, base: str, objects: dict[str, bytes]) -> None:
    def put(item: tuple[str, bytes]) -> None:
        hook.put(base + item[0], item[1], crc32c=crc32c_hex(item[1]))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, objects.items()))


@pytest.fixture(scope="module")
def s3_source(s3, corpus) -> str:
    """The corpus on SeaweedFS, seeded once: the source prefix (a folder URL)."""
    base = f"s3://{BUCKET}/{unique_prefix()}src/"
    seed_all(s3, base, corpus)
    return base


@pytest.fixture(scope="module")
def local_source(tmp_path_factory, corpus) -> str:
    root = str(tmp_path_factory.mktemp("local-source"))
    for relative, data in corpus.items():
        path = os.path.join(root, *relative.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return root + "/"


def options(state_dir: str, **kw) -> BulkOptions:
    kw.setdefault("parallelism", 4)
    kw.setdefault("retry", FAST_RETRY)
    return BulkOptions(state_dir=state_dir, **kw)


def run_bulk(src_hook, dst_hook, src: str, dst: str, state_dir: str, **kw) -> tuple[BulkSummary, list[ManifestRow]]:
    """One bulk run; its summary and every row (on_row sees all of them, whatever row_limit)."""
    listing = kw.pop("listing", None)
    delete = kw.pop("delete_extraneous", False)
    rows: list[ManifestRow] = []
    summary = bulk_transfer(
        src_hook, dst_hook, src, dst, options(state_dir, **kw), listing=listing, on_row=rows.append,
        delete_extraneous=delete,
    )  # fmt: skip
    return summary, rows


def by_source(rows) -> dict[str, list]:
    out: dict[str, list] = {}
    for row in rows:
        source = row["source"] if isinstance(row, dict) else row.source
        out.setdefault(source, []).append(row)
    return out


def local_files(root: str) -> dict[str, bytes]:
    """Every file below ``root`` (relative path with '/' -> bytes); symlinks are not followed."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root).replace(os.sep, "/")] = f.read()
    return out


def read_all(hook, urls: list[str]) -> dict[str, bytes]:
    with ThreadPoolExecutor(8) as pool:
        return dict(zip(urls, pool.map(hook.read_bytes, urls), strict=True))


def assert_holds(hook, base: str, objects: dict[str, bytes]) -> None:
    """The destination ``base`` holds exactly ``objects`` (keys and bytes), nothing else: no temp
    file, no tracker beside a local destination."""
    if hook is None:  # a local folder
        found = local_files(base)
        assert sorted(found) == sorted(objects)
        bad = [k for k, data in objects.items() if found[k] != data]
    else:
        listed = sorted(o.url for o in hook.list(base))
        assert listed == sorted(base + k for k in objects)
        found = read_all(hook, listed)
        bad = [k for k, data in objects.items() if found[base + k] != data]
    assert not bad, f"{len(bad)} object(s) differ, e.g. {bad[:3]}"


def assert_nothing_left(hook, prefix: str, state_dir: str) -> None:
    """No multipart upload under ``prefix``, no temporary component in its bucket, no file at
    all (tracker, spool, lock) in ``state_dir``."""
    if hook is not None and hook.capabilities.multipart_upload:
        assert list(hook.list_multipart_uploads(prefix)) == []
    if hook is not None and hook.capabilities.can_compose:
        bucket = hook.parse(prefix).bucket
        assert [o.url for o in hook.list(f"gs://{bucket}/{COMPONENTS}")] == []
    assert os.listdir(state_dir) == []


def ferry_env(seaweedfs) -> dict[str, str]:
    """The store's own environment settings: the command loads no Airflow (fast to start)."""
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": seaweedfs.url,
        "AWS_ACCESS_KEY_ID": seaweedfs.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_key,
        "AWS_DEFAULT_REGION": seaweedfs.region,
    }


def ferry(seaweedfs, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FERRY, *argv], capture_output=True, text=True, timeout=300, env=ferry_env(seaweedfs))


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def json_rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


# -- 1. five directions, byte-identical, a second run all skip, nothing left ------------------
@dataclass
class Moved:
    """One direction's two runs."""

    source: str
    destination: str
    dst_hook: object  # None: a local folder
    state_dir: str
    first: BulkSummary
    first_rows: list[ManifestRow]
    second: BulkSummary
    second_rows: list[ManifestRow]


DIRECTIONS = ["s3-local", "local-s3", "s3-gcs", "gcs-s3", "s3-s3"]


@pytest.fixture(scope="module")
def move(s3, gcs, s3_source, local_source, tmp_path_factory) -> Callable[[str], Moved]:
    """Run one direction (twice) on first use; GCS -> S3 starts from what S3 -> GCS wrote."""
    done: dict[str, Moved] = {}
    local = FerryLocalHook()

    def run(direction: str) -> Moved:
        if direction in done:
            return done[direction]
        prefix = unique_prefix()
        state = str(tmp_path_factory.mktemp(f"state-{direction}"))
        if direction == "s3-local":
            src_hook, dst_hook, src = s3, None, s3_source
            dst = str(tmp_path_factory.mktemp("local-dest")) + "/"
        elif direction == "local-s3":
            src_hook, dst_hook, src, dst = local, s3, local_source, f"s3://{BUCKET}/{prefix}up/"
        elif direction == "s3-gcs":
            src_hook, dst_hook, src, dst = s3, gcs, s3_source, f"gs://{BUCKET}/{prefix}from-s3/"
        elif direction == "gcs-s3":
            src_hook, dst_hook, src = gcs, s3, run("s3-gcs").destination
            dst = f"s3://{BUCKET}/{prefix}from-gcs/"
        else:
            src_hook, dst_hook, src, dst = s3, s3, s3_source, f"s3://{BUCKET}/{prefix}copy/"
        first, first_rows = run_bulk(src_hook, dst_hook or local, src, dst, state)
        second, second_rows = run_bulk(src_hook, dst_hook or local, src, dst, state)
        done[direction] = Moved(src, dst, dst_hook, state, first, first_rows, second, second_rows)
        return done[direction]

    return run


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_prefix_moves_byte_identical_then_all_skip(move, corpus, direction: str) -> None:
    m = move(direction)
    n = len(corpus)
    source_of = {m.source + k: k for k in corpus}
    for summary, rows, result in ((m.first, m.first_rows, "OK"), (m.second, m.second_rows, "skip")):
        grouped = by_source(rows)
        assert sorted(grouped) == sorted(source_of), "not one row per source object"
        wrong = [r for r in rows if r.result != result]
        assert not wrong, f"{len(wrong)} row(s) not {result}, e.g. {wrong[:2]}"
        assert all(len(v) == 1 for v in grouped.values())
        for row in rows:
            relative = source_of[row.source]
            expected = os.path.join(m.destination, *relative.split("/")) if m.dst_hook is None else None
            assert row.destination == (expected or m.destination + relative)
            assert row.source_size == len(corpus[relative])
            if row.crc32c:
                assert row.crc32c == crc32c_hex(corpus[relative]), row
        assert dict(summary.counts) == {result: n}
        assert summary.already_done == 0 and summary.errors == 0
        assert len(summary.rows) == 100 and summary.rows_truncated  # the default row_limit
    big_row = next(r for r in m.first_rows if r.source.endswith("big/big.bin"))
    assert big_row.crc32c == crc32c_hex(corpus["big/big.bin"])
    if direction != "s3-s3":  # server-side copies move no byte through the worker
        assert m.first.bytes["OK"] == sum(map(len, corpus.values()))
    assert m.second.bytes["skip"] == 0
    assert_holds(m.dst_hook, m.destination, corpus)
    assert_nothing_left(m.dst_hook, m.destination, m.state_dir)


# -- 2 and 5. killed half-way, rerun with the same manifest (local file or object URL) --------
@pytest.mark.parametrize("where", ["local-csv", "s3-jsonl"])
def test_a_killed_run_resumes_from_its_manifest(seaweedfs, s3, s3_source, corpus, tmp_path, state_dir, where) -> None:
    """SIGKILL once the manifest (or, for an object-URL manifest, its spool in state_dir) holds
    rows; the rerun with the same manifest does not look at the objects listed OK, finishes the
    rest, and the manifest then lists every object exactly once as OK or skip."""
    src = s3_source + "small/"
    small = {k[len("small/") :]: v for k, v in corpus.items() if k.startswith("small/")}
    dest = str(tmp_path / "dest")
    if where == "local-csv":
        manifest = str(tmp_path / "manifests" / "run.csv")  # its folder is made
        spool_or_file = lambda: manifest  # noqa: E731
    else:
        manifest = f"s3://{BUCKET}/{unique_prefix()}manifests/run.jsonl"

        def spool_or_file() -> str:
            spools = [n for n in os.listdir(state_dir) if n.endswith(".ferry-spool")]
            return os.path.join(state_dir, spools[0]) if spools else os.path.join(state_dir, "none")

    argv = ["cp", "-r", src, dest, "--manifest", manifest, "--state-dir", state_dir, "-q"]

    def rows_so_far() -> list[dict]:
        with contextlib.suppress(FileNotFoundError), open(spool_or_file(), newline="") as f:
            return list(parse_rows(f.read()))
        return []

    child = subprocess.Popen(
        [*FERRY, *argv, "--concurrency", "2"], env=ferry_env(seaweedfs), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while child.poll() is None and len(rows_so_far()) < 50 and time.monotonic() < deadline:
            time.sleep(0.005)  # polling the manifest, not waiting for anything to happen
    finally:
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, f"the run ended before it was killed: {err.decode()}"
    before = rows_so_far()
    assert 50 <= len(before) < len(small), len(before)
    assert {r["result"] for r in before} <= {"OK", "skip"}, before[:3]
    done_before = {r["source"] for r in before}
    if where == "s3-jsonl":
        digest = hashlib.sha1(manifest.encode()).hexdigest()[:16]  # the spool's name, as the writer makes it
        assert not os.path.exists(os.path.expanduser(f"~/.local/state/ferry/manifest.{digest}.ferry-spool"))
        with pytest.raises(Exception, match=r"(?i)not found|404|no such"):
            s3.head(manifest)  # rows are uploaded when the run ends, not before
    else:
        with open(manifest) as f:
            assert f.readline().strip() == GSUTIL_HEADER

    rerun = ferry(seaweedfs, *argv, "--json")
    assert rerun.returncode == 0, rerun.stderr
    again = json_rows(rerun.stdout)
    assert not done_before & {r["source"] for r in again}, "the rerun redid objects its manifest lists as done"
    assert {r["result"] for r in again} <= {"OK", "skip"}
    assert f"{len(done_before)} already done" in rerun.stderr, rerun.stderr
    if where == "s3-jsonl":
        text = s3.read_bytes(manifest).decode()
    else:
        with open(manifest, newline="") as f:
            text = f.read()
        assert text.count("Source,Destination") == 1  # one header, the rerun appended rows only
    final = list(parse_rows(text))
    done = Counter(r["source"] for r in final if r["result"] in ("OK", "skip"))
    assert sorted(done) == sorted(src + k for k in small), "some object has no OK/skip row"
    assert set(done.values()) == {1}, [s for s, c in done.items() if c > 1][:3]
    assert all(r["result"] != "error" for r in final)
    assert_holds(None, dest, small)
    assert_nothing_left(None, dest, state_dir)  # the spool went with the upload


# -- 3. path safety ---------------------------------------------------------------------------
def snapshot(root: str, skip: str) -> dict[str, object]:
    """Every entry below ``root`` except what is below ``skip``: path -> bytes, link target or dir."""
    out: dict[str, object] = {}
    for folder, dirs, files in os.walk(root):
        if os.path.abspath(folder).startswith(os.path.abspath(skip)):
            continue
        for name in dirs + files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                out[path] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[path] = "dir"
            else:
                with open(path, "rb") as f:
                    out[path] = f.read()
    return out


def test_keys_that_cannot_be_local_paths_are_error_rows_real_gcs_keys(gcs, tmp_path, state_dir) -> None:
    """Keys the GCS emulator stores as they are: '/abs', 'a//b', './dot', a 300-byte segment, a
    file/dir clash ('a' and 'a/b'), and a folder below the destination that is a symbolic link
    to elsewhere. Each is an error row (one of the clash pair may win); nothing lands outside."""
    base = f"gs://{BUCKET}/{unique_prefix()}"
    long = "L" * 300
    keys = {"ok.txt": b"fine", "/abs": b"abs", "a//b": b"ab", "./dot": b"dot", f"{long}/x": b"long"}
    keys |= {"a": b"file a", "a/b": b"file a/b", "link/escape": b"through the link"}
    for key, data in keys.items():
        gcs.put(base + key, data)
    parent = tmp_path / "parent"
    outside = parent / "outside"
    outside.mkdir(parents=True)
    (parent / "keep.txt").write_bytes(b"keep")
    dest = parent / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "link")
    before = snapshot(str(tmp_path), str(dest))
    summary, rows = run_bulk(gcs, FerryLocalHook(), base, str(dest) + "/", state_dir)
    results = {r.source[len(base) :]: r for r in rows}
    assert sorted(results) == sorted(keys)
    assert results["ok.txt"].result == "OK"
    for key in ("/abs", "a//b", "./dot", f"{long}/x", "link/escape"):
        assert results[key].result == "error", results[key]
        assert REFUSED_KEY.search(results[key].description), results[key].description
    assert snapshot(str(tmp_path), str(dest)) == before  # nothing written outside dest
    assert os.listdir(outside) == []
    assert os.listdir(state_dir) == []
    # The clash last: one of 'a' and 'a/b' is an error row, the other OK at its own path.
    clash = sorted(results[k].result for k in ("a", "a/b"))
    assert clash == ["OK", "error"], (results["a"], results["a/b"])
    assert summary.counts["error"] == 6 and summary.counts["OK"] == 2
    winner = "a" if results["a"].result == "OK" else "a/b"
    assert results[winner].destination == os.path.join(dest, *winner.split("/")), results[winner]
    assert local_files(str(dest)) == {"ok.txt": b"fine", winner: keys[winner]}


def test_keys_that_cannot_be_local_paths_are_error_rows_fed_listing(s3, tmp_path, state_dir) -> None:
    """Keys no test store accepts ('..' segments, a NUL byte, an absolute path), fed through the
    engine's ``listing=`` with ObjectInfo of real objects; a folder marker ('dir/', empty) is a
    clean skip. Nothing is written outside the destination, not even a folder."""
    base = f"s3://{BUCKET}/{unique_prefix()}"
    s3.put(base + "real.bin", b"real bytes", crc32c=crc32c_hex(b"real bytes"))
    s3.client.put_object(Bucket=BUCKET, Key=s3.parse(base).key + "dir/", Body=b"")  # a real folder marker
    real = s3.head(base + "real.bin")
    marker = next(o for o in s3.list(base) if o.url.endswith("/dir/"))
    bad = ["../../x", "a/../../y", "..", "../sibling", "x\0y", "/etc/ferry-abs", "a//b", "./z", "L" * 256]
    listing = [Listed(real, key) for key in bad] + [Listed(marker, "dir/"), Listed(real, "good/real.bin")]
    parent = tmp_path / "parent"
    dest = parent / "a" / "dest"  # '../../x' from here would be parent/x
    dest.mkdir(parents=True)
    before = snapshot(str(tmp_path), str(dest))
    _, rows = run_bulk(s3, FerryLocalHook(), base, str(dest) + "/", state_dir, listing=iter(listing))
    assert len(rows) == len(listing)
    by_dest = Counter(r.result for r in rows)
    assert by_dest == {"error": len(bad), "skip": 1, "OK": 1}, [(r.result, r.description) for r in rows]
    for row in rows:
        if row.result == "error":
            assert REFUSED_KEY.search(row.description), row.description
        if row.result == "skip":
            assert "folder marker" in row.description and row.source == marker.url
    assert snapshot(str(tmp_path), str(dest)) == before
    assert not os.path.exists("/etc/ferry-abs")
    assert local_files(str(dest)) == {"good/real.bin": b"real bytes"}
    assert_nothing_left(None, str(dest), state_dir)


# -- 4. filters, no_clobber, size_only, the operator ------------------------------------------
FILTERED = {
    "top.csv": b"c" * 100,
    "top.txt": b"t" * 200,
    "sub/mid.csv": b"m" * 300,
    "sub/deep/low.csv": b"l" * 400,
    "sub/deep/low.json": b"j" * 500,
}


@pytest.fixture(scope="module")
def filter_source(s3) -> str:
    base = f"s3://{BUCKET}/{unique_prefix()}filtered/"
    seed_all(s3, base, FILTERED)
    return base


@pytest.mark.parametrize(
    ("only", "expected"),
    [
        ({"glob": "*.csv"}, {"top.csv"}),
        ({"glob": "**.csv"}, {"top.csv", "sub/mid.csv", "sub/deep/low.csv"}),
        ({"glob": "**/*.csv"}, {"sub/mid.csv", "sub/deep/low.csv"}),
        ({"glob": "sub/*/*"}, {"sub/deep/low.csv", "sub/deep/low.json"}),
        ({"glob": "top.???"}, {"top.csv", "top.txt"}),
        ({"regex": r"\.json$"}, {"sub/deep/low.json"}),
        ({"regex": r"^sub/(?!deep/)"}, {"sub/mid.csv"}),
        ({"min_size": 300}, {"sub/mid.csv", "sub/deep/low.csv", "sub/deep/low.json"}),
        ({"max_size": 300}, {"top.csv", "top.txt", "sub/mid.csv"}),
        ({"min_size": 200, "max_size": 400}, {"top.txt", "sub/mid.csv", "sub/deep/low.csv"}),
        ({"glob": "**.csv", "min_size": 101, "regex": "deep"}, {"sub/deep/low.csv"}),
    ],
    ids=lambda v: json.dumps(v, sort_keys=True) if isinstance(v, dict) else None,
)
def test_filters_pick_the_objects(s3, filter_source, tmp_path, state_dir, only: dict, expected: set[str]) -> None:
    dest = str(tmp_path / "dest")
    summary, rows = run_bulk(s3, FerryLocalHook(), filter_source, dest, state_dir, only=ListFilter(**only))
    assert sorted(r.source[len(filter_source) :] for r in rows) == sorted(expected)  # no row for the others
    assert all(r.result == "OK" for r in rows) and summary.counts["OK"] == len(expected)
    assert local_files(dest) == {k: FILTERED[k] for k in expected}
    assert_nothing_left(None, dest, state_dir)


def test_modified_since_is_inclusive_and_needs_a_zone(s3, filter_source, tmp_path, state_dir) -> None:
    listed = {o.url[len(filter_source) :]: o.last_modified for o in s3.list(filter_source)}
    newest, oldest = max(listed.values()), min(listed.values())
    cases = [
        (oldest, set(listed)),
        (newest, {k for k, t in listed.items() if t >= newest}),
        (newest + timedelta(seconds=1), set()),
    ]
    for i, (since, expected) in enumerate(cases):
        dest = str(tmp_path / f"dest{i}")
        _, rows = run_bulk(s3, FerryLocalHook(), filter_source, dest, state_dir, only=ListFilter(modified_since=since))
        assert sorted(r.source[len(filter_source) :] for r in rows) == sorted(expected), since
        assert local_files(dest) == {k: FILTERED[k] for k in expected}
    from ferry_provider.hooks.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="time zone"):
        ListFilter(modified_since=newest.replace(tzinfo=None))


@pytest.mark.parametrize("side", ["local", "s3"])
def test_no_clobber_and_size_only(s3, filter_source, tmp_path, state_dir, side: str) -> None:
    """Destination before: top.csv other bytes, same size; top.txt other bytes, other size.
    Default: both overwritten with the source's bytes (a digest, not the size, decides).
    size_only: same size is a skip (left as it is), other size is transferred. no_clobber: any
    existing destination is a skip, left as it is."""
    same_size, other_size = b"X" * 100, b"Y" * 7

    def prepare(name: str) -> tuple[str, object]:
        if side == "local":
            dest = str(tmp_path / name) + "/"
            os.makedirs(dest)
            for k, data in (("top.csv", same_size), ("top.txt", other_size)):
                (tmp_path / name / k).write_bytes(data)
            return dest, None
        dest = f"s3://{BUCKET}/{unique_prefix()}{name}/"
        s3.put(dest + "top.csv", same_size)
        s3.put(dest + "top.txt", other_size)
        return dest, s3

    def contents(dest: str, hook) -> dict[str, bytes]:
        if hook is None:
            return local_files(dest)
        return {o.url[len(dest) :]: s3.read_bytes(o.url) for o in s3.list(dest)}

    dst_hook = FerryLocalHook() if side == "local" else s3
    for mode, kw, kept in [
        ("default", {}, set()),
        ("size_only", {"size_only": True}, {"top.csv"}),
        ("no_clobber", {"no_clobber": True}, {"top.csv", "top.txt"}),
    ]:
        dest, hook = prepare(mode)
        _, rows = run_bulk(s3, dst_hook, filter_source, dest, state_dir, **kw)
        results = {r.source[len(filter_source) :]: r for r in rows}
        assert sorted(results) == sorted(FILTERED)
        skipped = {k for k, r in results.items() if r.result == "skip"}
        assert skipped == kept, (mode, {k: (r.result, r.description) for k, r in results.items()})
        assert all(r.result == "OK" for k, r in results.items() if k not in kept), mode
        if mode == "size_only":
            assert "size" in results["top.csv"].description
        expected = dict(FILTERED)
        expected.update({k: {"top.csv": same_size, "top.txt": other_size}[k] for k in kept})
        assert contents(dest, hook) == expected, mode
        assert_nothing_left(hook, dest, state_dir)


CLASH = {"a": b"file a", "a/b": b"file a/b", "c.txt": b"c", "d/e.txt": b"e", "f.txt": b"f"}


@pytest.fixture(scope="module")
def clash_source(s3) -> str:
    """Five objects; 'a' and 'a/b' cannot both be local files: a download has one error row."""
    base = f"s3://{BUCKET}/{unique_prefix()}clash/"
    # One at a time: SeaweedFS keeps objects in a file tree, and creating the file 'a' while
    # another request creates the folder 'a/' for 'a/b' lost one of them now and then.
    for key, data in CLASH.items():
        s3.put(base + key, data, crc32c=crc32c_hex(data))
    assert sorted(o.url[len(base) :] for o in s3.list(base)) == sorted(CLASH)
    return base


LONG_KEY = "L" * 300 + "/x"  # a 300-byte segment: no Linux file system takes it
FAILING = {LONG_KEY: b"long", "c.txt": b"c", "d/e.txt": b"e", "f.txt": b"f", "g.txt": b"g"}


@pytest.fixture(scope="module")
def failing_source(s3) -> str:
    """Five objects, one of which cannot be a local file: a download always has one error row."""
    base = f"s3://{BUCKET}/{unique_prefix()}failing/"
    seed_all(s3, base, FAILING)
    return base


def assert_failing_outcome(dest: str, rows: list[dict], state_dir: str, extra: dict | None = None) -> None:
    """The failing prefix downloaded to ``dest``: the long key is the one error row, the others
    are OK at their own paths, and nothing else is there."""
    results = {r["source"].rsplit("/failing/", 1)[1]: r for r in rows}
    assert sorted(results) == sorted(FAILING)
    assert {k for k, r in results.items() if r["result"] == "error"} == {LONG_KEY}
    assert REFUSED_KEY.search(results[LONG_KEY]["description"]), results[LONG_KEY]
    assert all(r["result"] == "OK" and r["destination"] == dest + k for k, r in results.items() if k != LONG_KEY)
    assert local_files(dest) == {k: v for k, v in FAILING.items() if k != LONG_KEY} | (extra or {})
    assert os.listdir(state_dir) == []


def assert_clash_outcome(dest: str, rows: list[dict], state_dir: str, extra: dict | None = None) -> None:
    """The clash prefix downloaded to ``dest``: 'a' or 'a/b' is the one error row; every OK row
    put its object's bytes at its own key's path; the folder holds exactly those files (no temp
    file of the failed object, no file at a path no key names) and state_dir is empty."""
    results = {r["source"].rsplit("/clash/", 1)[1]: r for r in rows}
    assert sorted(results) == sorted(CLASH)
    failed = sorted(k for k, r in results.items() if r["result"] == "error")
    assert failed in (["a"], ["a/b"]), {k: (r["result"], r["destination"]) for k, r in results.items()}
    ok = {k: r["destination"] for k, r in results.items() if r["result"] == "OK"}
    wrong_path = {k: where for k, where in ok.items() if where != dest + k}
    assert not wrong_path, f"OK rows written elsewhere than their key's path: {wrong_path}"
    expected = {k: CLASH[k] for k, r in results.items() if r["result"] == "OK"} | (extra or {})
    assert local_files(dest) == expected
    assert os.listdir(state_dir) == []


@pytest.mark.parametrize("order", [["a", "a/b"], ["a/b", "a"]], ids=["file-first", "folder-first"])
def test_a_file_dir_clash_is_an_error_row_in_either_order(s3, clash_source, tmp_path, state_dir, order) -> None:
    """One object at a time, in a set order: whichever of 'a' and 'a/b' comes second cannot be
    a file at its key's path and is an error row; the first is OK at its own path."""
    infos = {o.url[len(clash_source) :]: o for o in s3.list(clash_source)}
    dest = str(tmp_path / "dest") + "/"
    listing = [Listed(infos[k], k) for k in order]
    _, rows = run_bulk(s3, FerryLocalHook(), clash_source, dest, state_dir, listing=listing, concurrency=1)
    first, second = rows
    assert (first.result, first.destination) == ("OK", dest + order[0]), first
    assert second.result == "error", second
    assert local_files(dest) == {order[0]: CLASH[order[0]]}
    assert os.listdir(state_dir) == []


def run_operator(monkeypatch, **kwargs):
    """Run FerryBulkTransferOperator.execute with a task instance that records its XComs;
    (return value or the exception, pushed XComs)."""
    from ferry_provider.operators.bulk import FerryBulkTransferOperator

    pushed: dict[str, object] = {}

    class TI:
        def xcom_push(self, key: str, value: object) -> None:
            pushed[key] = json.loads(json.dumps(value))  # what XCom could carry

    op = FerryBulkTransferOperator(task_id="bulk", retry_attempts=2, retry_max_wait=0.1, **kwargs)
    try:
        return op.execute({"ti": TI()}), pushed
    except Exception as exc:
        return exc, pushed


@pytest.mark.parametrize("fail_on_error", [True, False])
def test_operator_fail_on_error_and_row_limit(s3, failing_source, tmp_path, state_dir, fail_on_error, monkeypatch):
    """One object fails (a key no local path can hold): the others are still transferred; with fail_on_error
    the task fails at the end and the summary is pushed as XCom bulk_summary; without it, the
    summary is the return value. The summary carries row_limit rows at most, with counts of all."""
    from airflow.sdk.exceptions import AirflowException

    dest = str(tmp_path / "dest") + "/"
    manifest = str(tmp_path / "rows.jsonl")
    outcome, pushed = run_operator(
        monkeypatch,
        source=failing_source,
        destination=dest,
        source_conn_id=S3_CONN,
        state_dir=state_dir,
        manifest=manifest,
        row_limit=2,
        fail_on_error=fail_on_error,
    )
    if fail_on_error:
        assert isinstance(outcome, AirflowException), outcome
        assert "1 object(s) failed" in str(outcome)
        summary = pushed["bulk_summary"]
    else:
        assert isinstance(outcome, dict), outcome
        summary = json.loads(json.dumps(outcome))
    assert summary["counts"] == {"OK": 4, "skip": 0, "error": 1}
    assert len(summary["rows"]) == 2 and summary["rows_truncated"] is True
    with open(manifest, newline="") as f:
        rows = list(parse_rows(f.read()))
    assert_failing_outcome(dest, rows, state_dir)


def test_operator_filters_and_a_summary_that_holds_every_row(s3, filter_source, tmp_path, state_dir, monkeypatch):
    dest = str(tmp_path / "dest") + "/"
    manifest = str(tmp_path / "m.csv")
    outcome, pushed = run_operator(
        monkeypatch,
        source=filter_source,
        destination=dest,
        conn_id=S3_CONN,
        state_dir=state_dir,
        include="**.csv",
        min_size="101",  # templated values arrive as text
        manifest=manifest,
    )
    assert isinstance(outcome, dict), outcome
    assert outcome["counts"] == {"OK": 2, "skip": 0, "error": 0} and pushed == {}
    assert outcome["rows_truncated"] is False and len(outcome["rows"]) == 2
    assert outcome["manifest"] == manifest
    with open(manifest, newline="") as f:
        assert sorted(r["source"] for r in parse_rows(f.read())) == sorted(
            filter_source + k for k in ("sub/mid.csv", "sub/deep/low.csv")
        )
    assert local_files(dest) == {k: FILTERED[k] for k in ("sub/mid.csv", "sub/deep/low.csv")}


# -- 6. sync --delete and --dry-run -----------------------------------------------------------
def test_sync_delete_and_dry_run(seaweedfs, s3, tmp_path, state_dir) -> None:
    """S3 -> S3. The destination holds one identical object, one that differs, and two the
    source lacks. --dry-run says what it would do and changes nothing; sync --delete then leaves
    the destination equal to the source; a filtered sync --delete only deletes what its filter
    admits."""
    prefix = unique_prefix()
    src, dst = f"s3://{BUCKET}/{prefix}src/", f"s3://{BUCKET}/{prefix}dst/"
    source = {"same.txt": b"same", "differs.txt": b"new bytes", "missing/there.csv": b"missing"}
    seed_all(s3, src, source)
    seed_all(s3, dst, {"same.txt": b"same", "differs.txt": b"old bytes", "stale.txt": b"s", "old/x.csv": b"x"})

    def destination() -> dict[str, bytes]:
        return {o.url[len(dst) :]: s3.read_bytes(o.url) for o in s3.list(dst)}

    before = destination()
    dry = ferry(seaweedfs, "sync", src, dst, "--delete", "--dry-run", "--state-dir", state_dir, "-q")
    assert dry.returncode == 0, dry.stderr
    assert sorted(dry.stdout.splitlines()) == sorted(
        [
            f"would transfer {src}differs.txt -> {dst}differs.txt (differs)",
            f"would transfer {src}missing/there.csv -> {dst}missing/there.csv (missing at the destination)",
            f"would delete {dst}stale.txt (not at the source)",
            f"would delete {dst}old/x.csv (not at the source)",
        ]
    )
    assert "2 to transfer, 1 identical or already done, 2 to delete; nothing was changed" in dry.stderr
    assert destination() == before and os.listdir(state_dir) == []

    # A filtered sync: only *.csv on both sides takes part.
    filtered = ferry(seaweedfs, "sync", src, dst, "--delete", "--include", "**.csv", "--state-dir", state_dir, "-q")
    assert filtered.returncode == 0, filtered.stderr
    assert destination() == {
        "same.txt": b"same",
        "differs.txt": b"old bytes",
        "stale.txt": b"s",
        "missing/there.csv": b"missing",
    }

    done = ferry(seaweedfs, "sync", src, dst, "--delete", "--state-dir", state_dir, "-q", "--json")
    assert done.returncode == 0, done.stderr
    results = {r["source"][len(src) :]: r["result"] for r in json_rows(done.stdout)}
    assert results == {"same.txt": "skip", "differs.txt": "OK", "missing/there.csv": "skip"}
    assert "1 deleted at the destination" in done.stderr, done.stderr
    assert destination() == source
    assert_nothing_left(s3, dst, state_dir)


def test_sync_delete_deletes_nothing_when_an_object_failed(seaweedfs, s3, failing_source, tmp_path, state_dir) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "stale.txt").write_bytes(b"stale")
    out = ferry(seaweedfs, "sync", failing_source, str(dest), "--delete", "--state-dir", state_dir, "--json", "-q")
    assert out.returncode == 1, out.stderr
    assert not re.search(r"\d+ deleted", out.stderr), out.stderr
    assert (dest / "stale.txt").read_bytes() == b"stale"  # nothing deleted
    assert_failing_outcome(str(dest) + "/", json_rows(out.stdout), state_dir, extra={"stale.txt": b"stale"})


def test_a_file_dir_clash_under_sync_delete(seaweedfs, s3, clash_source, tmp_path, state_dir) -> None:
    """'a' and 'a/b' downloaded at once (the default concurrency): one is an error row, the
    other is OK at its own key's path, no temp file stays, and --delete then deletes nothing."""
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "stale.txt").write_bytes(b"stale")
    out = ferry(seaweedfs, "sync", clash_source, str(dest), "--delete", "--state-dir", state_dir, "--json", "-q")
    rows = json_rows(out.stdout)
    assert_clash_outcome(str(dest) + "/", rows, state_dir, extra={"stale.txt": b"stale"})
    assert out.returncode == 1 and not re.search(r"\d+ deleted", out.stderr), out.stderr


def test_sync_dry_run_to_a_local_folder_creates_nothing(seaweedfs, clash_source, tmp_path, state_dir) -> None:
    dest = tmp_path / "not-yet"
    out = ferry(seaweedfs, "sync", clash_source, str(dest), "--dry-run", "--delete", "--state-dir", state_dir, "-q")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == len(CLASH) and all(line.startswith("would transfer ") for line in lines), lines
    assert not dest.exists() and os.listdir(state_dir) == []


# -- 7. the sharded DAG ------------------------------------------------------------------------
SHARDED = {f"part-{i:02d}/obj-{i:03d}.bin": os.urandom(2000 + 37 * i) for i in range(24)}


def test_sharded_dag_moves_every_object_once_and_a_rerun_skips(
    airflow_db, s3, tmp_path, state_dir, monkeypatch
) -> None:
    import ferry_provider.transfer.shards as shards
    from tests.conftest import run_dag

    monkeypatch.setattr(shards, "MIN_SHARD_WEIGHT", 4 * MiB)  # 24 objects weigh 24 MiB: 4 shards
    src = f"s3://{BUCKET}/{unique_prefix()}sharded/"
    seed_all(s3, src, SHARDED)
    work, dest = tmp_path / "work", tmp_path / "dest"
    env = {
        "FERRY_BULK_WORK": str(work),
        "FERRY_BULK_SOURCE": src,
        "FERRY_BULK_SRC_CONN": S3_CONN,
        "FERRY_BULK_DEST": str(dest) + "/",
        "FERRY_BULK_STATE_DIR": state_dir,
        "FERRY_BULK_SHARDS": "4",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FERRY_BULK_DST_CONN", raising=False)

    def run_once(expected: str) -> None:
        run = run_dag("ferry_test_bulk")
        assert run.state == "success"
        plan = run.get_task_instance("plan").xcom_pull(task_ids="plan")
        assert len(plan) == 4, plan
        assert all(set(p) == {"source_listing", "listing_conn_id", "manifest"} for p in plan), plan  # never keys
        moves = [ti for ti in run.get_task_instances() if ti.task_id == "move"]
        assert sorted(ti.map_index for ti in moves) == [0, 1, 2, 3]
        assert all(ti.state == "success" for ti in moves)
        per_shard = []
        for ti in sorted(moves, key=lambda t: t.map_index):
            summary = ti.xcom_pull(task_ids="move", map_indexes=ti.map_index)
            assert summary["counts"]["error"] == 0 and summary["counts"][expected] >= 1, summary
            per_shard.append(summary["counts"][expected])
        assert sum(per_shard) == len(SHARDED)
        merged = run.get_task_instance("merge").xcom_pull(task_ids="merge")
        assert merged["objects"] == len(SHARDED) and merged["shards"] == 4
        # Each shard names the worker that ran it: the hostname Airflow recorded for its task instance.
        hosts = {ti.map_index: ti.hostname for ti in moves}
        assert all(hosts.values()), hosts
        by_shard = merged["by_shard"]
        assert [s["shard"] for s in by_shard] == [0, 1, 2, 3]
        assert [s["worker"] for s in by_shard] == [hosts[i] for i in range(4)]
        assert [s["objects"] for s in by_shard] == per_shard
        assert [s["counts"][expected] for s in by_shard] == per_shard
        assert [s["manifest"] for s in by_shard] == [p["manifest"] for p in plan]
        assert merged["counts"] == {"OK": 0, "skip": 0, "error": 0} | {expected: len(SHARDED)}
        with open(work / "merged.csv", newline="") as f:
            text = f.read()
        rows = list(parse_rows(text))
        assert text.splitlines()[0] == GSUTIL_HEADER
        assert sorted(r["source"] for r in rows) == sorted(src + k for k in SHARDED)  # each exactly once
        assert {r["result"] for r in rows} == {expected}
        assert local_files(str(dest)) == SHARDED

    run_once("OK")
    run_once("skip")
    assert os.listdir(state_dir) == []


# -- 8. the command line -----------------------------------------------------------------------
def test_cli_cp_recursive_exit_codes_and_json_rows(seaweedfs, s3, filter_source, failing_source, tmp_path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    dest = str(tmp_path / "dest")
    argv = ["cp", "-r", filter_source, dest, "--state-dir", str(state), "-q", "--json"]
    first = ferry(seaweedfs, *argv)
    assert first.returncode == 0, first.stderr
    rows = json_rows(first.stdout)  # stdout: one JSON row per object, nothing else
    assert sorted(r["source"] for r in rows) == sorted(filter_source + k for k in FILTERED)
    assert {r["result"] for r in rows} == {"OK"}
    assert "5 OK, 0 skipped, 0 failed" in first.stderr
    assert local_files(dest) == FILTERED
    second = ferry(seaweedfs, *argv)
    assert second.returncode == 0, second.stderr
    assert [r["result"] for r in json_rows(second.stdout)] == ["skip"] * len(FILTERED)
    # Without --json the summary is the one line on stdout.
    plain = ferry(seaweedfs, "cp", "-r", filter_source, dest, "--state-dir", str(state), "-q", "--include", "*.csv")
    assert plain.returncode == 0, plain.stderr
    assert one_line(plain.stdout).startswith("0 OK, 1 skipped, 0 failed;"), plain.stdout
    failed_dest = str(tmp_path / "failing") + "/"
    failing = ferry(seaweedfs, "cp", "-r", failing_source, failed_dest, "--state-dir", str(state), "--json")
    assert failing.returncode == 1, failing.stderr
    assert_failing_outcome(failed_dest, json_rows(failing.stdout), str(state))
    assert f"error: {failing_source}{LONG_KEY}" in failing.stderr  # the failure is named as it happens


@pytest.mark.parametrize(
    "case", ["expected-digest", "expected-size", "overlap-down", "overlap-up", "local-to-local", "same-prefix"]
)
def test_cli_refusals_are_one_line_and_change_nothing(seaweedfs, s3, tmp_path, state_dir, case: str) -> None:
    prefix = f"s3://{BUCKET}/{unique_prefix()}"
    s3.put(prefix + "p/x.txt", b"x")
    local_src = tmp_path / "local-src"
    local_src.mkdir()
    (local_src / "f.txt").write_bytes(b"f")
    local_dst = tmp_path / "local-dst"
    argv, message = {
        "expected-digest": (
            ["cp", "-r", prefix + "p/", str(local_dst), "--expected-digest", "crc32c=00000000"],
            "single objects|prefix",
        ),
        "expected-size": (["cp", "-r", prefix + "p/", str(local_dst), "--expected-size", "1"], "single objects|prefix"),
        "overlap-down": (["cp", "-r", prefix + "p/", prefix + "p/sub/"], "overlap"),
        "overlap-up": (["cp", "-r", prefix + "p/sub", prefix + "p"], "overlap"),
        "same-prefix": (["sync", prefix + "p", prefix + "p/"], "overlap"),
        "local-to-local": (["cp", "-r", str(local_src), str(local_dst)], "local"),
    }[case]
    out = ferry(seaweedfs, *argv, "--state-dir", state_dir, "-q")
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert re.search(message, one_line(out.stderr)), out.stderr
    assert out.stdout == ""
    assert [o.url for o in s3.list(prefix)] == [prefix + "p/x.txt"]
    assert not local_dst.exists() and os.listdir(state_dir) == []


def test_cli_manifest_on_object_storage_is_uploaded_at_the_end(seaweedfs, s3, filter_source, tmp_path) -> None:
    """A finished run: the manifest object holds gsutil's header and every row; no spool left."""
    state = tmp_path / "state"
    state.mkdir()
    manifest = f"s3://{BUCKET}/{unique_prefix()}m.csv"
    dest = f"s3://{BUCKET}/{unique_prefix()}copy/"
    argv = ["cp", "-r", filter_source, dest, "--manifest", manifest, "--state-dir", str(state), "-q"]
    out = ferry(seaweedfs, *argv, "--conn", S3_CONN)  # the manifest's store through the connection too
    assert out.returncode == 0, out.stderr
    assert f"manifest {manifest}" in out.stdout
    text = s3.read_bytes(manifest).decode()
    assert text.splitlines()[0] == GSUTIL_HEADER
    rows = list(parse_rows(text))
    assert sorted(r["source"] for r in rows) == sorted(filter_source + k for k in FILTERED)
    assert {r["result"] for r in rows} == {"OK"}
    assert_holds(s3, dest, FILTERED)
    assert_nothing_left(s3, dest, str(state))


def test_an_upload_to_a_new_prefix_lists_the_destination_once_instead_of_a_lookup_per_object(
    s3_proxy, tmp_path, state_dir, monkeypatch
) -> None:
    """The first objects are looked up one by one; once more follow (here after 4), one LIST of
    the destination replaces the lookups of those it does not show. On the rerun every object is
    there, so each is looked up and compared (all skip). A run of few objects never lists."""
    import ferry_provider.transfer.bulk as bulk_module

    proxied, direct, proxy = s3_proxy
    files = {f"d{i % 3}/{i}.bin": os.urandom(1000 + i) for i in range(12)}
    for relative, data in files.items():
        path = tmp_path / "src" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    destination = f"s3://{PROXY_BUCKET}/{unique_prefix()}"

    def run() -> tuple[BulkSummary, Counter[str]]:
        proxy.reset()
        summary = bulk_transfer(FerryLocalHook(), proxied, f"{tmp_path}/src/", destination, options(state_dir))
        # Requests begun, not records: a record is written after its answer is sent, so the last
        # one may still be on its way when the run returns.
        requests = Counter("LIST" if "list-type=2" in path else method for method, path in list(proxy.begun))
        return summary, requests

    few, requests = run()  # 12 objects: fewer than LIST_DESTINATION_AFTER
    assert dict(few.counts) == {"OK": 12} and requests == {"HEAD": 12, "PUT": 12}
    destination = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    monkeypatch.setattr(bulk_module, "LIST_DESTINATION_AFTER", 4)
    first, requests = run()
    assert dict(first.counts) == {"OK": 12}
    assert requests == {"HEAD": 4, "LIST": 1, "PUT": 12}
    assert_holds(direct, destination, files)
    again, requests = run()
    assert dict(again.counts) == {"skip": 12}
    assert requests == {"HEAD": 12, "LIST": 1}


def test_keys_that_differ_by_a_trailing_question_mark_or_hash_stay_apart(s3, tmp_path, state_dir) -> None:
    files = {"x": b"AAAA", "x?": b"BBBBBBBB", "h": b"C", "h#": b"DD", "a?b#": b"EEE"}
    for name, data in files.items():
        (tmp_path / "src").mkdir(exist_ok=True)
        (tmp_path / "src" / name).write_bytes(data)
    up = f"s3://{BUCKET}/{unique_prefix()}"
    summary, _ = run_bulk(FerryLocalHook(), s3, f"{tmp_path}/src/", up, state_dir)
    assert dict(summary.counts) == {"OK": 5}
    assert_holds(s3, up, files)
    down = tmp_path / "down"
    summary, _ = run_bulk(s3, FerryLocalHook(), up, f"{down}/", state_dir)
    assert dict(summary.counts) == {"OK": 5}
    assert {p.name: p.read_bytes() for p in down.iterdir()} == files
    again, _ = run_bulk(FerryLocalHook(), s3, f"{tmp_path}/src/", up, state_dir)
    assert dict(again.counts) == {"skip": 5}


@pytest.mark.parametrize("kind", ["upload", "server-side copy"])
def test_no_clobber_keeps_an_object_that_appears_after_the_destination_listing(
    s3, tmp_path, state_dir, kind: str, monkeypatch
) -> None:
    """The listing said 'absent', then another writer put the object: the conditional write is
    refused, and that is no_clobber's skip, not an error."""
    import ferry_provider.transfer.bulk as bulk_module

    monkeypatch.setattr(bulk_module, "LIST_DESTINATION_AFTER", 0)  # listed before the first object
    files = {"a.bin": b"a" * 100, "b.bin": b"b" * 100, "c.bin": os.urandom(11 * MiB)}  # c: multipart
    base = f"s3://{BUCKET}/{unique_prefix()}"
    if kind == "upload":
        for name, data in files.items():
            (tmp_path / "src").mkdir(exist_ok=True)
            (tmp_path / "src" / name).write_bytes(data)
        src_hook, source = FerryLocalHook(), f"{tmp_path}/src/"
    else:
        src_hook, source = s3, base + "src/"
        for name, data in files.items():
            s3.put(source + name, data, crc32c=crc32c_hex(data))
    destination = base + "dst/"
    intruders = {"b.bin": b"theirs", "c.bin": b"theirs too"}

    def intrude(row: ManifestRow) -> None:  # rows arrive in listing order at concurrency 1
        if row.destination.endswith("a.bin"):
            for name, data in intruders.items():
                s3.put(destination + name, data)

    rows: list[ManifestRow] = []

    def record(row: ManifestRow) -> None:
        rows.append(row)
        intrude(row)

    opts = options(state_dir, no_clobber=True, concurrency=1, part_size=5 * MiB)
    summary = bulk_transfer(src_hook, s3, source, destination, opts, on_row=record)
    verb = "upload" if kind == "upload" else "copy"
    assert {r.destination.rsplit("/", 1)[1]: (r.result, r.description) for r in rows} == {
        "a.bin": ("OK", rows[0].description),
        "b.bin": ("skip", f"the destination appeared during the {verb} (no_clobber); left as it was"),
        "c.bin": ("skip", f"the destination appeared during the {verb} (no_clobber); left as it was"),
    }
    assert summary.errors == 0
    assert_holds(s3, destination, {"a.bin": files["a.bin"], **intruders})
    assert list(s3.list_multipart_uploads(destination)) == []  # c's parts were not left behind


def test_sync_delete_keeps_its_own_manifest_under_the_destination(seaweedfs, s3, tmp_path, state_dir) -> None:
    prefix = unique_prefix()
    src, dst = f"s3://{BUCKET}/{prefix}src/", f"s3://{BUCKET}/{prefix}dst/"
    seed_all(s3, src, {"a.txt": b"a", "b.txt": b"b"})
    seed_all(s3, dst, {"stale.txt": b"s"})
    manifest = dst + "_manifest.jsonl"
    args = ("sync", src, dst, "--delete", "--manifest", manifest, "--state-dir", state_dir, "-q")
    dry = ferry(seaweedfs, *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert [line for line in dry.stdout.splitlines() if "delete" in line] == [
        f"would delete {dst}stale.txt (not at the source)"
    ]
    first = ferry(seaweedfs, *args)
    assert first.returncode == 0, first.stderr
    assert "1 deleted at the destination" in first.stdout + first.stderr
    assert sorted(o.url for o in s3.list(dst)) == [dst + "_manifest.jsonl", dst + "a.txt", dst + "b.txt"]
    again = ferry(seaweedfs, *args)  # the manifest is still there, so the rerun does no work
    assert again.returncode == 0, again.stderr
    said = again.stdout + again.stderr
    assert "2 already done" in said and "deleted" not in said, said


def test_a_bulk_download_never_writes_through_links_left_at_its_temp_names(s3, tmp_path, state_dir) -> None:
    """Symbolic links inside the destination folder at the temp names of a small and a large
    object (no tracker): the bytes must land in the folder only, never in the files the links
    point to, and never create a file outside it; the destinations are regular files."""
    base = f"s3://{BUCKET}/{unique_prefix()}leftlinks/"
    objects = {"small.bin": os.urandom(5000), "big.bin": os.urandom(3 * MiB + 1)}
    seed_all(s3, base, objects)
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (outside / "kept").write_bytes(b"not Ferry's")
    os.symlink(outside / "created", dest / "small.bin.ferry-tmp")  # dangling
    os.symlink(outside / "kept", dest / "big.bin.ferry-tmp")
    _, rows = run_bulk(s3, FerryLocalHook(), base, str(dest) + "/", state_dir, concurrency=2, part_size=MiB)
    assert sorted(r.result for r in rows) == ["OK", "OK"], rows
    assert sorted(os.listdir(outside)) == ["kept"], "a file was created outside the destination folder"
    assert (outside / "kept").read_bytes() == b"not Ferry's", "an object was written outside the destination"
    links = [n for n in os.listdir(dest) if os.path.islink(dest / n)]
    assert links == [], f"published as symbolic links out of the folder: {links}"
    assert local_files(str(dest)) == objects
    assert os.listdir(state_dir) == []


def test_copies_through_the_worker_keep_to_sixteen_objects_and_eight_connections(s3, gcs, tmp_path, state_dir) -> None:
    """Left to the link, up to 64 objects may be in flight and a large object may take 32
    connections. A copy between stores holds each object's bytes (up to a part of 8 MiB) in this
    process, so there the link keeps to 16 objects and a large object to 8 connections (128 and
    64 MiB); what the caller sets explicitly is used as it is."""
    from ferry_provider.transfer.bulk import _Bulk
    from ferry_provider.transfer.options import adaptive_options

    def planned(src, dst, source: str, destination: str, **kw) -> tuple[int, int, int]:
        opts = BulkOptions(state_dir=state_dir, **{**adaptive_options(None), **kw})
        bulk = _Bulk(src, dst, source, destination, opts, None, dry_run=True)
        return bulk.objects_in_flight(), bulk.connections_for(100 * MiB), bulk.connections_for(MiB)

    s3_prefix, gcs_prefix = f"s3://{BUCKET}/from/", f"gs://{BUCKET}/to/"
    assert planned(s3, gcs, s3_prefix, gcs_prefix) == (16, 8, 1)  # through the worker
    assert planned(s3, s3, s3_prefix, f"s3://{BUCKET}/to/", server_side="never") == (16, 8, 1)
    assert planned(s3, s3, s3_prefix, f"s3://{BUCKET}/to/") == (64, 32, 1)  # the store copies
    assert planned(s3, FerryLocalHook(), s3_prefix, str(tmp_path / "down")) == (64, 32, 1)
    fixed = planned(s3, gcs, s3_prefix, gcs_prefix, concurrency=40, parallelism=12, adaptive=False)
    assert fixed == (40, 12, 1)
