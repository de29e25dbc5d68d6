"""Hostile review of bulk transfers whose objects in flight are chosen by the link (concurrency
unset): one row per object whatever fails, no hang, bytes identical, the gate and the budget
respected, the CLI and the operator defaults. Real SeaweedFS, faults through the real proxy.

Every run that could hang runs in a daemon thread (or a subprocess) with a bounded wait: a hang
is a failure of the test, not a timeout of the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

import ferry_provider.transfer.bulk as bulk_module
from ferry_provider.hooks.errors import FerryError
from ferry_provider.hooks.local import FerryLocalHook
from ferry_provider.hooks.s3 import FerryS3Hook
from ferry_provider.transfer.listing import Listed
from ferry_provider.transfer.manifest_file import parse_rows
from tests.conftest import PROXY_BUCKET, S3_CONN
from tests.stores import MiB, unique_prefix
from tests.test_bulk import (
    CLASH,
    FERRY,
    assert_clash_outcome,
    assert_nothing_left,
    ferry_env,
    local_files,
    options,
    run_bulk,
    run_operator,
    seed_all,
)

HANG = 120  # seconds: far past what any run here needs; reaching it is a hang


def bounded(fn: Callable[[], object], seconds: float = HANG) -> object:
    """``fn()`` in a daemon thread; fail the test if it has not ended after ``seconds``."""
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # re-raised below, in the test's thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True, name="review-bulk-run")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"the bulk run did not end within {seconds}s: a hang")
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out["value"]


def small_objects(n: int, size: int = 2048) -> dict[str, bytes]:
    return {f"obj-{i:04d}.dat": os.urandom(size + i % 7) for i in range(n)}


def mixed_objects() -> dict[str, bytes]:
    """40 small, 2 empty, 2 large (> 8 MiB: several connections each), nested keys."""
    objects = {f"s/{i % 4}/obj-{i:03d}.dat": os.urandom(1500 + 37 * i) for i in range(40)}
    objects["e/empty-1"] = b""
    objects["e/empty-2.bin"] = b""
    objects["big/obj-big-1.bin"] = os.urandom(9 * MiB + 3)
    objects["big/obj-big-2.bin"] = os.urandom(8 * MiB + 1)
    return objects


def seeded(direct: FerryS3Hook, objects: dict[str, bytes]) -> str:
    base = f"s3://{PROXY_BUCKET}/{unique_prefix()}src/"
    seed_all(direct, base, objects)
    return base


def rows_of(manifest: str) -> list[dict]:
    with open(manifest, newline="") as f:
        return list(parse_rows(f.read()))


def assert_one_row_each(base: str, objects: dict[str, bytes], rows, summary=None, manifest: str | None = None) -> None:
    """Exactly one row per object (on_row, the manifest file and the summary's counts agree)."""
    sources = [r.source if hasattr(r, "source") else r["source"] for r in rows]
    counted = Counter(sources)
    twice = [s for s, c in counted.items() if c > 1]
    assert not twice, f"objects with more than one row: {twice[:3]}"
    missing = sorted(set(base + k for k in objects) - set(counted))
    assert not missing, f"{len(missing)} object(s) without a row, e.g. {missing[:3]}"
    assert len(sources) == len(objects)
    if summary is not None:
        assert sum(summary.counts.values()) == len(objects), dict(summary.counts)
        results = Counter(r.result if hasattr(r, "result") else r["result"] for r in rows)
        assert dict(summary.counts) == {k: v for k, v in results.items() if v}
    if manifest is not None:
        in_file = rows_of(manifest)
        assert Counter(r["source"] for r in in_file) == counted, "manifest rows differ from the rows reported"


def assert_local_outcome(dest: str, objects: dict[str, bytes], rows) -> None:
    """OK/skip rows: their bytes at their path; error rows: nothing there; no other file at all
    (no temp file beside the destination)."""
    found = local_files(dest)
    ok = {}
    for r in rows:
        relative = r.destination[len(dest) :] if r.destination.startswith(dest) else None
        if r.result in ("OK", "skip"):
            assert relative is not None, r
            ok[relative] = objects[relative]
        elif relative is not None:
            found.pop(relative + ".ferry-tmp", None)  # a failed object's resumable state, by design
    assert sorted(found) == sorted(ok), f"unexpected files: {sorted(set(found) - set(ok))[:5]}"
    bad = [k for k, data in ok.items() if found[k] != data]
    assert not bad, f"{len(bad)} file(s) differ, e.g. {bad[:3]}"


class Counting:
    """Wraps the engines bulk calls (download, upload, copy) to count, in the calling threads,
    objects moving at once and the connections granted to them at once; records every limit the
    link controller takes. Real engines run underneath: nothing is faked."""

    def __init__(self, monkeypatch) -> None:
        self.lock = threading.Lock()
        self.objects = 0
        self.connections = 0
        self.peak_objects = 0
        self.peak_connections = 0
        self.limits: list[int] = []
        self.controllers: list[object] = []
        for name in ("download", "upload", "copy"):
            monkeypatch.setattr(bulk_module, name, self._wrap(getattr(bulk_module, name)))
        counting = self

        class Recording(bulk_module.LinkController):
            def __setattr__(self, key, value):
                if key == "limit":
                    with counting.lock:
                        counting.limits.append(value)
                object.__setattr__(self, key, value)

            def __post_init__(self) -> None:
                counting.controllers.append(self)
                super().__post_init__()

        monkeypatch.setattr(bulk_module, "LinkController", Recording)

    def _wrap(self, engine):
        def counted(*args, **kwargs):
            opts = next(a for a in args if hasattr(a, "parallelism"))
            with self.lock:
                self.objects += 1
                self.connections += opts.parallelism
                self.peak_objects = max(self.peak_objects, self.objects)
                self.peak_connections = max(self.peak_connections, self.connections)
            try:
                return engine(*args, **kwargs)
            finally:
                with self.lock:
                    self.objects -= 1
                    self.connections -= opts.parallelism

        return counted


def mixed_run(direct, tmp_path, monkeypatch):
    """Mixed objects seeded under a prefix, a counter of what moves at once, a destination folder
    and a manifest path: (objects, prefix, counter, destination, manifest)."""
    objects = mixed_objects()
    return (
        objects,
        seeded(direct, objects),
        Counting(monkeypatch),
        str(tmp_path / "dest") + "/",
        str(tmp_path / "m.csv"),
    )


# -- 1. the gate and the budget ----------------------------------------------------------------
@pytest.mark.parametrize("max_connections", [None, 1, 2, 3])
def test_mixed_sizes_one_row_each_and_within_the_gate_and_budget(
    s3_proxy, tmp_path, state_dir, monkeypatch, max_connections
) -> None:
    proxied, direct, _ = s3_proxy
    objects, base, count, dest, manifest = mixed_run(direct, tmp_path, monkeypatch)
    summary, rows = bounded(
        lambda: run_bulk(
            proxied, FerryLocalHook(), base, dest, state_dir, max_connections=max_connections, manifest=manifest
        )
    )
    assert_one_row_each(base, objects, rows, summary, manifest)
    assert {r.result for r in rows} == {"OK"}, [(r.source, r.description) for r in rows if r.result != "OK"][:3]
    assert_local_outcome(dest, objects, rows)
    assert_nothing_left(None, dest, state_dir)
    budget = max_connections or 64
    assert count.controllers, "concurrency unset: the link should choose the objects in flight"
    assert max(count.limits) <= min(64, budget)
    assert count.peak_objects <= max(count.limits)
    assert count.peak_connections <= budget


def test_objects_in_flight_never_exceed_the_controllers_limit(s3_proxy, tmp_path, state_dir, monkeypatch) -> None:
    """Many objects through a slowed link (so many want to run at once): objects moving at
    once never exceed the most the controller ever allowed, nor 64."""
    proxied, direct, proxy = s3_proxy
    objects = small_objects(300, size=40_000)
    base = seeded(direct, objects)
    count = Counting(monkeypatch)
    proxy.faults.delay_per_chunk = 0.01
    dest = str(tmp_path / "dest") + "/"
    summary, rows = bounded(lambda: run_bulk(proxied, FerryLocalHook(), base, dest, state_dir))
    assert_one_row_each(base, objects, rows, summary)
    assert_local_outcome(dest, objects, rows)
    assert count.peak_objects <= max(count.limits) <= 64
    assert count.peak_connections <= 64


# -- 2. per-object failures -------------------------------------------------------------------
SLOWDOWN = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"

FAULTS = {
    "500s": {"error_status": 500, "error_times": 25},
    "resets": {"cut_mode": "reset", "cut_after": 100, "cut_times": 25},
    "truncated": {"cut_mode": "close", "cut_after": 100, "cut_times": 25},
    "slowdown": {"error_status": 503, "error_times": 25, "error_body": SLOWDOWN, "retry_after": "0"},
    "always-500-on-some": {"error_status": 500, "error_times": 10**6, "only_path": "/s/1/"},
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("max_connections", [None, 2])
def test_per_object_failures_still_one_row_each(
    s3_proxy, tmp_path, state_dir, monkeypatch, fault, max_connections
) -> None:
    proxied, direct, proxy = s3_proxy
    objects = mixed_objects()
    base = seeded(direct, objects)
    for name, value in FAULTS[fault].items():
        setattr(proxy.faults, name, value)
    if fault != "always-500-on-some":
        proxy.faults.only_path = "/obj-"  # objects only, never the listing
    dest = str(tmp_path / "dest") + "/"
    manifest = str(tmp_path / "m.csv")
    summary, rows = bounded(
        lambda: run_bulk(
            proxied, FerryLocalHook(), base, dest, state_dir, max_connections=max_connections, manifest=manifest
        )
    )
    assert proxy.fired, "the fault never fired"
    assert_one_row_each(base, objects, rows, summary, manifest)
    assert_local_outcome(dest, objects, rows)
    if fault == "always-500-on-some":
        failed = sorted(r.source[len(base) :] for r in rows if r.result == "error")
        assert failed == sorted(k for k in objects if k.startswith("s/1/"))
    if not summary.errors:
        assert_nothing_left(None, dest, state_dir)


def test_every_object_failing_ends_with_an_error_row_each(s3_proxy, tmp_path, state_dir) -> None:
    proxied, direct, proxy = s3_proxy
    objects = mixed_objects()
    base = seeded(direct, objects)
    proxy.faults.error_status, proxy.faults.error_times = 500, 10**6
    proxy.faults.error_methods, proxy.faults.only_path = ("GET", "HEAD"), "/src/"
    proxy.faults.error_after_requests = 1  # the listing
    dest = str(tmp_path / "dest") + "/"
    manifest = str(tmp_path / "m.csv")
    summary, rows = bounded(
        lambda: run_bulk(proxied, FerryLocalHook(), base, dest, state_dir, max_connections=3, manifest=manifest)
    )
    assert_one_row_each(base, objects, rows, summary, manifest)
    # Empty objects need no GET; every other one fails.
    assert {r.source[len(base) :] for r in rows if r.result == "error"} >= {k for k, v in objects.items() if v}
    assert_local_outcome(dest, objects, rows)


def test_uploads_mixed_sizes_with_resets_leave_no_multipart_upload(s3_proxy, tmp_path, state_dir) -> None:
    proxied, direct, proxy = s3_proxy
    objects = mixed_objects()
    root = tmp_path / "src"
    for relative, data in objects.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    proxy.faults.request_cut_after, proxy.faults.request_cut_times = 500, 2  # fewer than the attempts
    dest = f"s3://{PROXY_BUCKET}/{unique_prefix()}up/"
    summary, rows = bounded(
        lambda: run_bulk(FerryLocalHook(), proxied, str(root) + "/", dest, state_dir, max_connections=2)
    )
    assert len(rows) == len(objects) and len({r.source for r in rows}) == len(objects)
    assert dict(summary.counts) == {"OK": len(objects)}, [(r.source, r.description) for r in rows if r.result != "OK"]
    listed = {o.url[len(dest) :]: o for o in direct.list(dest)}
    assert sorted(listed) == sorted(objects)
    assert all(direct.read_bytes(dest + k) == v for k, v in objects.items())
    assert_nothing_left(direct, dest, state_dir)


# -- 3. edge listings ---------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1])
def test_an_empty_or_single_object_listing_ends(s3_proxy, tmp_path, state_dir, n) -> None:
    proxied, direct, _ = s3_proxy
    objects = small_objects(n)
    base = f"s3://{PROXY_BUCKET}/{unique_prefix()}src/"
    seed_all(direct, base, objects)
    dest = str(tmp_path / "dest") + "/"
    summary, rows = bounded(lambda: run_bulk(proxied, FerryLocalHook(), base, dest, state_dir))
    assert_one_row_each(base, objects, rows, summary)
    assert_local_outcome(dest, objects, rows)


def test_a_listing_failing_midway_ends_with_one_row_per_object_handed_out(s3_proxy, tmp_path, state_dir) -> None:
    proxied, direct, _ = s3_proxy
    objects = small_objects(150)
    base = seeded(direct, objects)
    real = [Listed(o, o.url[len(base) :]) for o in direct.list(base)]
    handed: list[str] = []

    def listing() -> Iterator[Listed]:
        for item in real[:100]:
            handed.append(item.relative)
            yield item
        raise FerryError("listing page 2: connection reset by peer")

    dest = str(tmp_path / "dest") + "/"
    manifest = str(tmp_path / "m.csv")
    with pytest.raises(FerryError, match=r"listing failed after 100 object"):
        bounded(
            lambda: run_bulk(proxied, FerryLocalHook(), base, dest, state_dir, listing=listing(), manifest=manifest)
        )
    rows = rows_of(manifest)
    assert Counter(r["source"] for r in rows) == Counter(base + k for k in handed)
    assert {r["result"] for r in rows} == {"OK"}
    assert local_files(dest) == {k: objects[k] for k in handed}


def test_path_escaping_keys_and_a_clash_with_a_one_connection_budget(s3_proxy, tmp_path, state_dir) -> None:
    """A fed listing: keys that cannot be paths (error rows), a file/dir clash, real objects; the
    budget (1) far below the controller's start (16)."""
    proxied, direct, _ = s3_proxy
    base = f"s3://{PROXY_BUCKET}/{unique_prefix()}clash/"
    for key, data in CLASH.items():  # one at a time: see test_bulk's clash_source
        direct.put(base + key, data)
    infos = {o.url[len(base) :]: o for o in direct.list(base)}
    bad = ["../../x", "a/../../y", "..", "/etc/ferry-abs", "./z"]
    listing = [Listed(infos["c.txt"], k) for k in bad] + [Listed(infos[k], k) for k in CLASH]
    dest = str(tmp_path / "dest") + "/"
    manifest = str(tmp_path / "m.csv")
    summary, rows = bounded(
        lambda: run_bulk(
            proxied,
            FerryLocalHook(),
            base,
            dest,
            state_dir,
            listing=iter(listing),
            max_connections=1,
            manifest=manifest,
        )
    )
    assert len(rows) == len(listing) == sum(summary.counts.values()) == len(rows_of(manifest))
    assert Counter(r.result for r in rows)["error"] == len(bad) + 1
    clash_rows = [r.to_dict() for r in rows if r.destination]  # the refused keys have none
    assert_clash_outcome(dest, clash_rows, state_dir)
    assert not os.path.exists("/etc/ferry-abs") and not os.path.exists(tmp_path / "x")


def test_a_file_dir_clash_with_the_link_choosing(s3_proxy, tmp_path, state_dir) -> None:
    proxied, direct, _ = s3_proxy
    base = f"s3://{PROXY_BUCKET}/{unique_prefix()}clash/"
    for key, data in CLASH.items():
        direct.put(base + key, data)
    dest = str(tmp_path / "dest") + "/"
    summary, rows = bounded(lambda: run_bulk(proxied, FerryLocalHook(), base, dest, state_dir))
    assert sum(summary.counts.values()) == len(CLASH)
    assert_clash_outcome(dest, [r.to_dict() for r in rows], state_dir)


# -- 4. rerun with the manifest, sync --delete -------------------------------------------------
def test_a_rerun_with_the_same_manifest_is_all_already_done(s3_proxy, tmp_path, state_dir) -> None:
    proxied, direct, _ = s3_proxy
    objects = mixed_objects()
    base = seeded(direct, objects)
    dest = str(tmp_path / "dest") + "/"
    manifest = str(tmp_path / "m.csv")
    first, rows = bounded(lambda: run_bulk(proxied, FerryLocalHook(), base, dest, state_dir, manifest=manifest))
    assert dict(first.counts) == {"OK": len(objects)}
    again, again_rows = bounded(lambda: run_bulk(proxied, FerryLocalHook(), base, dest, state_dir, manifest=manifest))
    assert again_rows == [] and again.already_done == len(objects) and sum(again.counts.values()) == 0
    assert_one_row_each(base, objects, rows_of(manifest))
    assert_local_outcome(dest, objects, rows)
    assert_nothing_left(None, dest, state_dir)


def proxy_env(seaweedfs, proxy) -> dict[str, str]:
    assert proxy._server is not None
    return {**ferry_env(seaweedfs), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy._server.server_address[1]}"}


def test_cli_sync_delete_with_the_link_choosing(seaweedfs, s3_proxy, tmp_path, state_dir) -> None:
    _, direct, proxy = s3_proxy
    objects = mixed_objects()
    base = seeded(direct, objects)
    dest = f"s3://{PROXY_BUCKET}/{unique_prefix()}dst/"
    extra = {"gone-1.txt": b"old", "s/9/gone-2.txt": b"older"}
    seed_all(direct, dest, extra | {"s/0/obj-000.dat": b"stale"})
    manifest = str(tmp_path / "m.csv")
    argv = ["sync", base, dest, "--delete", "--manifest", manifest, "--state-dir", state_dir, "-q"]
    out = subprocess.run([*FERRY, *argv], capture_output=True, text=True, timeout=HANG, env=proxy_env(seaweedfs, proxy))
    assert out.returncode == 0, out.stderr
    assert "2 deleted at the destination" in out.stdout, out.stdout
    assert_one_row_each(base, objects, rows_of(manifest))
    assert sorted(o.url[len(dest) :] for o in direct.list(dest)) == sorted(objects)
    assert all(direct.read_bytes(dest + k) == v for k, v in objects.items())
    assert_nothing_left(direct, dest, state_dir)


# -- 5. interrupts -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "concurrency", "signum"),
    [
        (120, None, signal.SIGINT),
        (120, None, signal.SIGTERM),
        (300, None, signal.SIGINT),  # more than 64 workers + a queue of 128 hold
        (120, 16, signal.SIGINT),  # explicit: 16 workers + a queue of 32
    ],
    ids=["120-link-SIGINT", "120-link-SIGTERM", "300-link-SIGINT", "120-explicit16-SIGINT"],
)
def test_cli_interrupt_while_workers_are_parked(
    seaweedfs, s3_proxy, tmp_path, state_dir, n, concurrency, signum
) -> None:
    """The first 5 object GETs pass, every later one is held by the proxy: 16 objects in flight
    (the controller's start), the rest parked at the gate or queued. A signal then: the process
    exits promptly with 128 + the signal; the 5 are OK rows, each object in flight one error row
    naming the signal, nothing has two rows."""
    _, direct, proxy = s3_proxy
    objects = small_objects(n)
    base = seeded(direct, objects)
    proxy.faults.stall_methods, proxy.faults.stall_times = ("GET",), 10**6
    proxy.faults.stall_after_requests, proxy.faults.stall_seconds = 5, 90
    proxy.faults.only_path = "/obj-"
    dest = str(tmp_path / "dest")
    manifest = str(tmp_path / "m.csv")
    argv = ["cp", "-r", base, dest, "--manifest", manifest, "--state-dir", state_dir, "-q"]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    in_flight = concurrency or 16
    child = subprocess.Popen(
        [*FERRY, *argv], env=proxy_env(seaweedfs, proxy), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proxy.wait_until(lambda p: p.held >= in_flight, 60), f"held {proxy.held}"
        child.send_signal(signum)
        try:
            _, err = child.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ferry cp -r did not exit within 20 s of {signal.Signals(signum).name}: a hang")
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=30)
        proxy.release_stalls()
    assert child.returncode == 128 + signum, err
    rows = rows_of(manifest)
    sources = Counter(r["source"] for r in rows)
    assert set(sources.values()) == {1}, "an object has two rows"
    results = Counter(r["result"] for r in rows)
    assert results == {"OK": 5, "error": in_flight}, results
    name = signal.Signals(signum).name
    assert all(name in r["description"] for r in rows if r["result"] == "error")


# -- 6. the CLI and the operator -----------------------------------------------------------------
def test_cli_concurrency_help_and_values(seaweedfs, s3_proxy, tmp_path) -> None:
    env = ferry_env(seaweedfs)
    for command in ("cp", "sync"):
        out = subprocess.run([*FERRY, command, "--help"], capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode == 0
        text = " ".join(out.stdout.split())
        assert "--concurrency" in text and "chosen by the link, 16 to 64" in text, text
    for bad in ("0", "-3", "many"):
        out = subprocess.run(
            [*FERRY, "cp", "-r", "s3://b/p/", str(tmp_path / "d"), "--concurrency", bad],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        assert out.returncode == 2 and "--concurrency" in out.stderr, (bad, out.stderr)


@pytest.mark.parametrize("concurrency", [None, 3])
def test_cli_cp_recursive_with_and_without_concurrency(seaweedfs, s3_proxy, tmp_path, concurrency) -> None:
    _, direct, proxy = s3_proxy
    objects = mixed_objects()
    base = seeded(direct, objects)
    state = tmp_path / "state"
    state.mkdir()
    dest = str(tmp_path / "dest") + "/"
    argv = ["cp", "-r", base, dest, "--state-dir", str(state), "-q", "--json", "--max-connections", "2"]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    out = subprocess.run([*FERRY, *argv], capture_output=True, text=True, timeout=HANG, env=proxy_env(seaweedfs, proxy))
    assert out.returncode == 0, out.stderr
    rows = [__import__("json").loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert_one_row_each(base, objects, rows)
    assert local_files(dest) == objects
    assert os.listdir(state) == []


def test_cli_json_rows_to_a_reader_that_went_away(seaweedfs, s3_proxy, tmp_path) -> None:
    """``ferry cp -r --json | head -1``: the reader goes away. The transfer must not lose
    objects for it (single-object cp keeps its exit code and the object, cli._print_result):
    every object is transferred and has its manifest row."""
    _, direct, _ = s3_proxy
    objects = small_objects(100)
    base = seeded(direct, objects)
    state = tmp_path / "state"
    state.mkdir()
    dest = str(tmp_path / "dest") + "/"
    manifest = str(tmp_path / "m.csv")
    argv = ["cp", "-r", base, dest, "--state-dir", str(state), "-q", "--json", "--manifest", manifest]
    child = subprocess.Popen(
        [*FERRY, *argv], env=ferry_env(seaweedfs), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    child.stdout.close()  # the reader went away before the first row
    try:
        _, err = child.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate(timeout=30)
        pytest.fail("ferry cp -r --json hung once its reader went away")
    assert_one_row_each(base, objects, rows_of(manifest))
    assert local_files(dest) == objects
    assert child.returncode == 0, err[-2000:]


def test_operator_concurrency_defaults_to_the_link(s3_proxy, tmp_path, state_dir, monkeypatch) -> None:
    from ferry_provider.operators.bulk import FerryBulkTransferOperator

    assert FerryBulkTransferOperator(task_id="t", source="s3://b/p/", destination="/d/").concurrency is None
    _, direct, _ = s3_proxy
    objects, base, count, dest, manifest = mixed_run(direct, tmp_path, monkeypatch)
    outcome, pushed = bounded(
        lambda: run_operator(
            monkeypatch, source=base, destination=dest, conn_id=S3_CONN, state_dir=state_dir, manifest=manifest
        )
    )
    assert isinstance(outcome, dict), outcome
    assert outcome["counts"] == {"OK": len(objects), "skip": 0, "error": 0} and pushed == {}
    assert count.controllers, "the operator's default should let the link choose"
    assert_one_row_each(base, objects, rows_of(manifest))
    assert local_files(dest) == objects


def test_options_resolve_in_flight_and_connections(state_dir) -> None:
    assert options(state_dir, max_connections=3).most_in_flight == 3
    assert options(state_dir).most_in_flight == 64 and options(state_dir).connections == 64
    assert options(state_dir, concurrency=5).most_in_flight == 5
