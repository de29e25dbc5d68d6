"""Hostile review of the link controller (connections chosen by the link), the gated part pool,
the one-part per-part verification and the pipeline's memory budget.

Real servers (SeaweedFS, the fault proxy in front of it); the controller's decisions on scripted
rate curves with fake clocks. No timing asserts: a hang is detected by a generous bound and then
ended by setting the transfer's own stop flag, so the test process never hangs.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable

import pytest

from ferry_provider.hooks.digests import b64_to_hex
from ferry_provider.hooks.errors import ChecksumMismatchError
from ferry_provider.hooks.s3 import FerryS3Hook
from ferry_provider.transfer import copy as copy_module
from ferry_provider.transfer.copy import PIPELINE_MEMORY, PIPELINE_PART, CopyOptions, copy
from ferry_provider.transfer.download import DownloadOptions, download
from ferry_provider.transfer.link_controller import LinkController, link_controller_for
from ferry_provider.transfer.manifest import OK, TransferError
from ferry_provider.transfer.options import adaptive_options
from ferry_provider.transfer.ordered_digest import OrderedDigests
from ferry_provider.transfer.parted_write import PartedWrite
from ferry_provider.transfer.pool import run_parts
from ferry_provider.transfer.verification import Check
from tests.conftest import PROXY_BUCKET, put_object
from tests.stores import MiB, crc32c_hex, unique_prefix
from tests.test_download import FAST_RETRY, assert_clean, put_multipart
from tests.test_link_controller import Clocks

HANG = 45.0  # seconds after which a transfer that should take a second or two is called hung
SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


def dopts(**kw) -> DownloadOptions:
    """A default download: no parallelism given, so the link chooses the connections."""
    kw.setdefault("retry", FAST_RETRY)
    return DownloadOptions(**adaptive_options(None), **kw)


def copts(state_dir: str, **kw) -> CopyOptions:
    """A default copy through this worker: the link chooses the connections."""
    kw.setdefault("retry", FAST_RETRY)
    kw.setdefault("server_side", "never")
    return CopyOptions(**adaptive_options(None), state_dir=state_dir, **kw)


def run_bounded(fn: Callable[[], object], on_hang: Callable[[], None]) -> tuple[bool, object]:
    """Run ``fn`` in a thread; -> (finished in time, its result or exception). When it did not
    finish within HANG seconds, ``on_hang`` is called to end it (the test then fails)."""
    out: list[object] = []

    def body() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            out.append(exc)

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(HANG)
    if t.is_alive():
        on_hang()
        t.join(30)
        return False, out[0] if out else None
    return True, out[0]


def stop_parted_writes() -> None:
    """End a hung copy: set the stop flag of every PartedWrite alive (its workers then raise)."""
    for obj in gc.get_objects():
        if isinstance(obj, PartedWrite):
            obj.stop.set()


def multipart_uploads(hook: FerryS3Hook, prefix: str) -> list:
    return list(hook.list_multipart_uploads(prefix))


def exists(hook: FerryS3Hook, url: str) -> bool:
    return any(o.url == url for o in hook.list(url))


# == 1. the gated pool: no deadlock, no more than the limit ======================================
def test_a_throttle_does_not_deadlock_parts_that_wait_for_their_turn() -> None:
    """A pipeline copy whose source digest needs the bytes in order (an MD5, a multipart ETag, a
    one-part composite value) feeds each part in index order *inside* the gated job, holding its
    gate slot while it waits for its turn. After a throttle lowers the limit below the pool's
    threads, a thread that finishes a part takes the next (higher) part and re-enters the gate
    before the woken waiters (which hold lower parts) do: the slots fill with parts waiting for a
    lower part that waits for a slot. The pool's promise: never hangs.

    Through the real stores (a 96 MiB one-part upload copied S3 -> S3 with server_side='never',
    one 503 SlowDown on an UploadPart) the copy hung in 3 of 6 runs; this drives the same real
    pool, controller and ordered digests with the timing pinned, so it hangs every time."""
    gate = LinkController(start=8, maximum=8, clock=lambda: 0.0, cpu_clock=lambda: 0.0)
    items = list(range(24))
    ordered = OrderedDigests([Check("md5", "00-1", (len(items),))])
    stop = threading.Event()
    release = threading.Event()
    started: list[int] = []
    lock = threading.Lock()

    def job(i: int) -> None:
        with lock:
            started.append(i)
        if i == 0:
            release.wait(HANG)  # part 0's fetch is slow: the others fetch and wait for their turn
        ordered.feed(i, memoryview(b"x"), stop)

    def run() -> None:
        run_parts(job, items, 32, stop, "review", gate=gate)

    finished: list[object] = []

    def body() -> None:
        try:
            run()
            finished.append(None)
        except BaseException as exc:
            finished.append(exc)

    t = threading.Thread(target=body, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while len(started) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.throttled(0.0)  # the store said SlowDown once: 8 -> 4
    release.set()
    t.join(20)
    hung = t.is_alive()
    with lock:
        seen = list(started)
    stop.set()
    t.join(10)
    assert not hung, f"run_parts deadlocked after a throttle: parts started, in order: {seen}"
    assert finished == [None]


def test_limit_raised_then_lowered_never_runs_more_than_the_limit() -> None:
    """A throttle while parts run: none starts until fewer than the new limit run."""
    gate = LinkController(start=4, maximum=8, clock=lambda: 0.0, cpu_clock=lambda: 0.0)
    running = 0
    violations: list[tuple[int, int]] = []
    lock = threading.Lock()
    first_four = threading.Barrier(4)

    def job(i: int) -> None:
        nonlocal running
        with lock:
            running += 1
            if running > gate.limit and i >= 4:
                violations.append((running, gate.limit))
        if i < 4:
            first_four.wait(10)
            if i == 0:
                gate.throttled(0.0)  # 4 -> 2 while four run
        time.sleep(0.002)
        with lock:
            running -= 1

    run_parts(job, list(range(40)), 32, threading.Event(), "review", gate=gate)
    assert gate.limit == 2 and violations == []


def test_a_stop_while_parts_wait_at_the_gate_ends_the_run() -> None:
    """Parts waiting at the gate see the stop flag; run_parts raises the first real error."""
    gate = LinkController(start=1, maximum=4, clock=lambda: 0.0, cpu_clock=lambda: 0.0)
    stop = threading.Event()

    def job(i: int) -> None:
        if i == 0:
            time.sleep(0.05)
            raise ValueError("part 0 failed")

    with pytest.raises(ValueError, match="part 0 failed"):
        run_parts(job, list(range(10)), 32, stop, "review", gate=gate)
    assert not stop.is_set()


# == 2. the controller's decisions on scripted curves ===========================================
def bursts(clocks: Clocks, c: LinkController, period_of: Callable[[int], float], part: int, count: int) -> None:
    """Uploads: each of the ``limit`` connections reports one whole part as it ends, and parts
    started together end together, ``period_of(limit)`` seconds apart (1 ms spread in a burst)."""
    for _ in range(count):
        limit = c.limit
        clocks.now += period_of(limit) - limit * 0.001
        for conn in range(limit):
            clocks.now += 0.001
            clocks.cpu += 0.0001
            c.observe(part, who=conn)


def test_bursts_faster_than_a_window_are_measured_at_their_true_rate() -> None:
    """16 parts of 8 MiB every 0.13 s is 985 MiB/s. After one burst the window (0.13 s) is
    shorter than 0.2 s and stays open; the next burst's *first* report closes it (every
    connection has already reported once): one burst and 1/16 of another over two periods,
    555 MiB/s, 56 % of the true rate. Windows are not "measured over whole bursts"."""
    clocks = Clocks()
    c = clocks.controller(start=16, maximum=16)
    bursts(clocks, c, lambda n: 0.13, 8 * MiB, 12)
    true_rate = 16 * 8 * MiB / 0.13
    assert c.history, "no window closed"
    measured = c.history[0][1]
    assert measured == pytest.approx(true_rate, rel=0.15), f"measured {measured / MiB:.0f} MiB/s"


def test_a_doubling_that_pays_38_percent_is_kept() -> None:
    """8 connections: bursts of 8 parts every 0.09 s (711 MiB/s); 16: every 0.13 s (985 MiB/s,
    +38 %); 32: the link is full (every 0.26 s). Both first levels are measured over partial
    bursts, by different amounts (8 x 3 + 1 reports in 0.27 s; 16 + 1 in 0.26 s): 517 against
    555 MiB/s, +7 %, so the controller settles back at 8 and leaves 38 % of the link unused."""
    clocks = Clocks()
    c = clocks.controller(start=8, maximum=32)
    bursts(clocks, c, lambda n: {8: 0.09, 16: 0.13}.get(n, 0.26), 8 * MiB, 40)
    assert c.history[0][0] == 8 and len(c.history) >= 2
    assert c.limit >= 16, f"settled at {c.limit}: history {[(n, round(r / MiB)) for n, r in c.history]}"


def test_evenly_reporting_connections_measure_the_true_rate_at_every_level() -> None:
    """Downloads report as bytes arrive: every level's window measures the curve it was given."""
    clocks = Clocks()
    c = clocks.controller(start=4, maximum=64)
    tick = 0.01
    for _ in range(400):
        limit = c.limit
        for conn in range(limit):
            clocks.now += tick / limit
            c.observe(int(min(40 * limit, 1000) * MiB * tick / limit), who=conn)
    for limit, rate in c.history:
        assert rate == pytest.approx(min(40 * limit, 1000) * MiB, rel=0.05)
    assert c.settled and c.limit == 32


def test_a_throttle_during_an_open_window_halves_and_freezes() -> None:
    clocks = Clocks()
    c = clocks.controller(start=4, maximum=32)
    heard: list[int] = []
    c.on_change(lambda: heard.append(c.limit))
    for conn in range(4):  # the window opens
        clocks.now += 0.01
        c.observe(MiB, who=conn)
    c.throttled(5.0)
    assert c.limit == 2 and c.settled and heard == [2]
    for _ in range(200):
        for conn in range(8):
            clocks.now += 0.01
            c.observe(8 * MiB, who=conn)
    assert c.limit == 2 and heard == [2] and c.history == []


def test_the_pipeline_budget_keeps_eight_parts() -> None:
    """Promise 3: a pipeline copy chosen by the link keeps at most 8 parts of 8 MiB."""
    opts = CopyOptions(**adaptive_options(None))
    link = link_controller_for(opts, PIPELINE_PART, PIPELINE_MEMORY)
    assert 64 * MiB == PIPELINE_MEMORY and link is not None
    assert link.maximum == 8 and link.limit <= 8
    # A larger part (a destination with a larger minimum) leaves fewer of them.
    assert link_controller_for(opts, 16 * MiB, PIPELINE_MEMORY).maximum == 4  # type: ignore[union-attr]
    assert link_controller_for(opts, 128 * MiB, PIPELINE_MEMORY).maximum == 1  # type: ignore[union-attr]


# == 3. default transfers against real servers ===================================================
@pytest.mark.parametrize("size", [0, 1, 8 * MiB - 1, 8 * MiB + 1, 40 * MiB + 7])
def test_a_default_download_of_any_size_is_byte_identical(s3_proxy, tmp_path, size: int) -> None:
    """0 and 1 byte, one part, and fewer parts than the 16 first connections."""
    via_proxy, direct, _proxy = s3_proxy
    url, data = put_object(direct, size)
    row = download(via_proxy, url, str(tmp_path / "o.bin"), dopts())
    assert row.result == OK and (tmp_path / "o.bin").read_bytes() == data
    assert row.crc32c == crc32c_hex(data)
    assert_clean(tmp_path)


def test_a_throttled_default_download_finishes(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    url, data = put_object(direct, 40 * MiB + 3)
    f = proxy.faults
    f.error_status, f.error_times, f.error_body, f.only_path = 503, 6, SLOWDOWN, url.split("/", 3)[3]
    f.error_after_requests = 2
    ok, result = run_bounded(lambda: download(via_proxy, url, str(tmp_path / "o.bin"), dopts()), lambda: None)
    assert ok, "a throttled default download hung"
    assert not isinstance(result, BaseException), result
    assert (tmp_path / "o.bin").read_bytes() == data and proxy.fired["error"] == 6
    assert_clean(tmp_path)


def test_a_default_download_with_a_stalled_part_finishes(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    url, data = put_object(direct, 40 * MiB + 3)
    f = proxy.faults
    f.stall_methods, f.stall_times, f.stall_at_byte, f.stall_seconds = ("GET",), 1, 64 * 1024, 3.0
    f.stall_after_requests, f.only_path = 2, url.split("/", 3)[3]
    ok, result = run_bounded(lambda: download(via_proxy, url, str(tmp_path / "o.bin"), dopts()), lambda: None)
    assert ok and not isinstance(result, BaseException), result
    assert (tmp_path / "o.bin").read_bytes() == data and proxy.fired["stall"] == 1
    assert_clean(tmp_path)


# == 4. one-part uploads verified by their per-part value =========================================
ONE_PART_KINDS = [
    ("CRC32C", "composite crc32c of 1 part"),
    ("CRC32", "composite crc32 of 1 part"),
    (None, "md5 of 1 part (multipart ETag)"),
]


@pytest.mark.parametrize("algorithm,kind", ONE_PART_KINDS, ids=["crc32c", "crc32", "etag"])
@pytest.mark.parametrize("size", [1, 20 * MiB + 5], ids=["1B", "20MiB"])
def test_a_good_one_part_upload_downloads_by_default_and_names_its_check(
    seaweedfs, s3_proxy, tmp_path, algorithm, kind: str, size: int
) -> None:
    _via, direct, _proxy = s3_proxy
    url, data, _ = put_multipart(direct.client, PROXY_BUCKET, [size], algorithm)
    row = download(direct, url, str(tmp_path / "o.bin"), dopts())
    assert (tmp_path / "o.bin").read_bytes() == data and row.result == OK
    assert row.description == f"verified size and {kind}"
    assert_clean(tmp_path)


@pytest.mark.parametrize("algorithm,kind", ONE_PART_KINDS, ids=["crc32c", "crc32", "etag"])
@pytest.mark.parametrize(
    "size,flip,how",
    [
        (1, 0, {}),
        (700 * 1024 + 3, 700 * 1024 + 2, {}),
        (20 * MiB + 5, 9 * MiB + 1, {}),  # default: 8 MiB ranges, the link's connections
        (20 * MiB + 5, 20 * MiB + 4, {"part_size": 5 * MiB}),
        (20 * MiB + 5, 3, {"parallelism": 1, "adaptive": False}),  # one connection: the ETag streamed
        (20 * MiB + 5, 11 * MiB, {"parallelism": 3, "adaptive": False, "part_size": 2 * MiB}),
    ],
    ids=["1B", "700KiB-last", "20MiB-default", "20MiB-5MiB", "20MiB-p1", "20MiB-p3"],
)
def test_a_flipped_byte_in_a_one_part_upload_fails_the_download(
    s3_proxy, tmp_path, algorithm, kind: str, size: int, flip: int, how: dict
) -> None:
    via_proxy, direct, proxy = s3_proxy
    url, _data, stored = put_multipart(direct.client, PROXY_BUCKET, [size], algorithm)
    proxy.faults.flip_offset = flip
    options = DownloadOptions(retry=FAST_RETRY, **how) if "adaptive" in how else dopts(**how)
    with pytest.raises(TransferError) as err:
        download(via_proxy, url, str(tmp_path / "o.bin"), options)
    assert isinstance(err.value.cause, ChecksumMismatchError), err.value
    expected = b64_to_hex(stored) if algorithm else stored
    assert f"{kind} mismatch: expected {expected}, got " in str(err.value)
    assert not (tmp_path / "o.bin").exists()
    assert_clean(tmp_path)


@pytest.mark.parametrize("algorithm", ["CRC32C", None], ids=["crc32c", "etag"])
@pytest.mark.parametrize("parallelism", [None, 1])
def test_a_zero_byte_one_part_upload_downloads(s3_proxy, tmp_path, algorithm, parallelism) -> None:
    _via, direct, _proxy = s3_proxy
    url, data, _ = put_multipart(direct.client, PROXY_BUCKET, [0], algorithm)
    options = DownloadOptions(retry=FAST_RETRY, **adaptive_options(parallelism))
    ok, row = run_bounded(lambda: download(direct, url, str(tmp_path / "o.bin"), options), lambda: None)
    assert ok, "hung"
    assert not isinstance(row, BaseException), row
    assert row.result == OK and (tmp_path / "o.bin").read_bytes() == data == b""  # type: ignore[union-attr]
    assert_clean(tmp_path)


def test_a_one_part_upload_already_at_the_destination_is_a_skip(s3_proxy, tmp_path) -> None:
    _via, direct, _proxy = s3_proxy
    url, data, _ = put_multipart(direct.client, PROXY_BUCKET, [3 * MiB + 1], None)
    dest = tmp_path / "o.bin"
    assert download(direct, url, str(dest), dopts()).result == OK
    again = download(direct, url, str(dest), dopts())
    assert again.result == "skip"
    assert again.description == "destination is identical (same size and md5 of 1 part (multipart ETag))"
    dest.write_bytes(b"y" * len(data))  # same size, other bytes: downloaded again
    assert download(direct, url, str(dest), dopts()).result == OK and dest.read_bytes() == data


# == 5. pipeline copies (S3 -> S3 through this worker), one-part sources ==========================
@pytest.mark.parametrize("algorithm,kind", ONE_PART_KINDS, ids=["crc32c", "crc32", "etag"])
@pytest.mark.parametrize(
    "size,flip", [(1, 0), (700 * 1024 + 3, 5), (20 * MiB + 5, 17 * MiB)], ids=["1B", "700KiB", "20MiB"]
)
def test_a_flipped_byte_in_a_one_part_source_fails_the_pipeline_copy(
    s3_proxy, state_dir, algorithm, kind: str, size: int, flip: int
) -> None:
    via_proxy, direct, proxy = s3_proxy
    src, _data, stored = put_multipart(direct.client, PROXY_BUCKET, [size], algorithm)
    prefix = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    dst = prefix + "copy.bin"
    proxy.faults.flip_offset, proxy.faults.only_path = flip, src.split("/", 3)[3]
    ok, result = run_bounded(lambda: copy(via_proxy, via_proxy, src, dst, copts(state_dir)), stop_parted_writes)
    assert ok, "the copy hung"
    assert isinstance(result, TransferError), result
    assert isinstance(result.cause, ChecksumMismatchError), result
    expected = b64_to_hex(stored) if algorithm else stored
    assert f"{kind} mismatch: expected {expected}, read " in str(result)
    assert not exists(direct, dst) and multipart_uploads(direct, prefix) == []
    assert os.listdir(state_dir) == []


@pytest.mark.parametrize("algorithm,kind", ONE_PART_KINDS, ids=["crc32c", "crc32", "etag"])
@pytest.mark.parametrize("size", [0, 1, 20 * MiB + 5], ids=["0B", "1B", "20MiB"])
def test_a_good_one_part_source_is_copied_through_the_pipeline(
    s3_proxy, state_dir, algorithm, kind: str, size: int
) -> None:
    via_proxy, direct, _proxy = s3_proxy
    src, data, _ = put_multipart(direct.client, PROXY_BUCKET, [size], algorithm)
    prefix = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    dst = prefix + "copy.bin"
    ok, row = run_bounded(lambda: copy(via_proxy, via_proxy, src, dst, copts(state_dir)), stop_parted_writes)
    assert ok, "the copy hung"
    assert not isinstance(row, BaseException), row
    assert row.result == OK and direct.read_bytes(dst) == data  # type: ignore[union-attr]
    assert row.description.startswith("pipeline")  # type: ignore[union-attr]
    if size:
        assert f"source's {kind} verified on the bytes read" in row.description  # type: ignore[union-attr]
    assert multipart_uploads(direct, prefix) == [] and os.listdir(state_dir) == []


def test_a_default_pipeline_copy_holds_at_most_eight_part_buffers(s3_proxy, state_dir, monkeypatch) -> None:
    """Promise 3, counted: the pipeline's part buffers (one bytearray per worker thread) never
    exceed 8 of 8 MiB, however many parts there are."""
    from ferry_provider.transfer import part_sources

    via_proxy, direct, _proxy = s3_proxy
    src, data = put_object(direct, 12 * PIPELINE_PART + 3)
    prefix = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    dst = prefix + "copy.bin"
    buffers: set[int] = set()
    threads: set[int] = set()
    real = part_sources.RemoteParts._buffer

    def counted(self, size: int):  # type: ignore[no-untyped-def]
        view = real(self, size)
        buffers.add(id(self._local.buf))
        threads.add(threading.get_ident())
        return view

    monkeypatch.setattr(part_sources.RemoteParts, "_buffer", counted)
    row = copy(via_proxy, via_proxy, src, dst, copts(state_dir))
    assert row.result == OK and direct.read_bytes(dst) == data
    assert len(buffers) <= 8 and len(threads) <= 8
    assert copy_module.PIPELINE_MEMORY // PIPELINE_PART == 8
