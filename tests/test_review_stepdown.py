"""Hostile review of 3a65ae9: a key's folders checked one lstat each (local_names) and the link
stepping objects in flight down to ``fewest`` (link_controller, bulk).

Tests marked ``PASSES (pins ...)`` held on 3a65ae9 and pin a promise worth keeping. Two failed
there: a throttle at the fewest was refused as going below it (the store's request wins: the test
now pins that), and a throttle in a bulk run never reached the objects-in-flight controller
(fixed: the objects' retry policy tells it).
"""

from __future__ import annotations

import os
import random
import threading
from collections import Counter

import pytest

import ferry_provider.transfer.bulk as bulk_module
from ferry_provider.hooks.errors import InvalidArgumentError
from ferry_provider.hooks.local import FerryLocalHook
from ferry_provider.transfer.bulk import BulkOptions, bulk_transfer
from ferry_provider.transfer.link_controller import LinkController
from ferry_provider.transfer.local_names import local_destination
from ferry_provider.transfer.manifest import ManifestRow
from tests.conftest import PROXY_BUCKET, bucket_hooks
from tests.stores import unique_prefix
from tests.test_bulk import FAST_RETRY, seed_all, snapshot
from tests.test_link_controller import Clocks, drive
from tests.test_review_bulk import bounded
from tests.test_review_link import SLOWDOWN

BUCKET = "ferry-review-stepdown"
MiB = 1 << 20

s3, gcs = bucket_hooks(BUCKET)  # module fixtures


# -- helpers ---------------------------------------------------------------------------------------
def plant(tmp_path) -> tuple[str, str, dict[str, bool]]:
    """A destination with links of every kind inside, and a folder outside it.
    Returns (root, outside, {key: may be written}) for keys going through each link."""
    root, outside = tmp_path / "dest", tmp_path / "outside"
    (root / "real" / "deep").mkdir(parents=True)
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "keep.txt").write_bytes(b"outside, untouched")
    os.symlink(outside, root / "out")  # absolute link out, depth 1
    os.symlink(outside, root / "real" / "deep" / "out3")  # depth 3
    os.symlink("../../outside", root / "real" / "rel")  # relative with '..': out
    os.symlink("../real/deep", root / "real" / "relin")  # relative with '..': stays in
    os.symlink(tmp_path / "nowhere", root / "dangling")  # dangling, would be made outside
    os.symlink("out", root / "chain")  # a link to a link to outside
    os.symlink(root / "real", root / "inlink")  # inside to inside
    os.symlink(root / "chain", root / "real" / "chain2")  # link -> link -> link -> outside
    os.symlink("..", root / "up")  # the root's parent (tmp_path), relative
    os.symlink(".", root / "self")  # the root itself
    os.symlink("loopb", root / "loopa")  # a loop
    os.symlink("loopa", root / "loopb")
    os.symlink(outside / "sub" / "keep.txt", root / "filelink")  # a link to a file outside
    keys = {
        "out/x.bin": False,
        "out/sub/keep.txt": False,
        "out/new/deeper/x.bin": False,
        "real/deep/out3/x.bin": False,
        "real/deep/out3/sub/keep.txt": False,
        "real/rel/x.bin": False,
        "real/rel/sub/keep.txt": False,
        "dangling/x.bin": False,
        "dangling/a/b/x.bin": False,
        "chain/x.bin": False,
        "real/chain2/x.bin": False,
        "real/chain2/sub/keep.txt": False,
        "up/outside/x.bin": False,
        "up/x.bin": False,
        "self/up/outside/x.bin": False,
        "filelink/x.bin": False,
        "real/relin/x.bin": True,
        "inlink/y.bin": True,
        "self/real/z.bin": True,
        "real/deep/new/x.bin": True,
        "plain/x.bin": True,
    }
    return str(root), str(outside), keys


def inside(path: str, real_root: str) -> bool:
    folder = os.path.dirname(path)
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    real = os.path.realpath(folder)
    return real == real_root or real.startswith(real_root + os.sep)


# ==================================================================================================
# 1. local_destination: never a path outside the destination
# ==================================================================================================
@pytest.mark.parametrize("via_link_root", [False, True], ids=["root", "root-is-a-link"])
def test_no_key_through_a_planted_link_becomes_a_path_outside(tmp_path, via_link_root) -> None:
    """PASSES (pins the lstat walk): every key through a link leading out (absolute, relative
    with '..', at depth 1 or 3, dangling, link to link, the root's parent, through a link to the
    root itself) is refused; keys through links that stay inside are given, and resolve inside.
    With the destination itself reached through a link, the same."""
    root, _, keys = plant(tmp_path)
    if via_link_root:
        os.symlink(root, tmp_path / "rootlink")
        root = str(tmp_path / "rootlink")
    real_root = os.path.realpath(root)
    for real in (real_root, ""):
        for key, allowed in keys.items():
            if allowed:
                path = local_destination(root, key, real)
                assert path == os.path.join(root, *key.split("/"))
                assert inside(path, real_root), key
            else:
                with pytest.raises(InvalidArgumentError, match="leads outside"):
                    local_destination(root, key, real)


def test_a_loop_of_links_is_never_given_as_a_path_outside(tmp_path) -> None:
    """PASSES: a loop of links (or a link to a file) below the root: either refused or a path
    that does not leave the root (the transfer then fails on it)."""
    root, _, _ = plant(tmp_path)
    real_root = os.path.realpath(root)
    for key in ("loopa/x.bin", "loopb/c/x.bin", "loopa/loopb/x"):
        try:
            path = local_destination(root, key, real_root)
        except InvalidArgumentError:
            continue
        assert os.path.realpath(os.path.dirname(path)).startswith(real_root + os.sep) or not os.path.isdir(
            os.path.dirname(path)
        )


# ==================================================================================================
# 2. A real bulk download into a destination with planted links
# ==================================================================================================
def test_a_bulk_download_writes_nothing_outside_through_planted_links(s3, tmp_path, state_dir) -> None:
    """PASSES (pins the promise end to end): SeaweedFS -> a local folder holding every kind of
    link; keys going out are ``error`` rows, nothing outside changes (bytes and entries), the
    others land with their bytes, one row per object. Run twice: the second run meets the
    folders the first one made."""
    root, outside, keys = plant(tmp_path)
    base = f"s3://{BUCKET}/{unique_prefix()}links/"
    data = {key: f"bytes of {key}".encode() * 50 for key in keys}
    seed_all(s3, base, data)
    before_out = snapshot(outside, root)
    before_parent = sorted(os.listdir(tmp_path))
    for _ in range(2):
        rows: list[ManifestRow] = []
        bounded(
            lambda rows=rows: bulk_transfer(
                s3,
                FerryLocalHook(),
                base,
                root + "/",
                BulkOptions(state_dir=state_dir, retry=FAST_RETRY, parallelism=2),
                on_row=rows.append,
            )
        )
        assert Counter(r.source for r in rows) == Counter(base + k for k in keys)
        results = {r.source[len(base) :]: r.result for r in rows}
        for key, allowed in keys.items():
            if allowed:
                assert results[key] in ("OK", "skip"), (key, results[key])
                with open(os.path.join(root, *key.split("/")), "rb") as f:
                    assert f.read() == data[key]
            else:
                assert results[key] == "error", (key, results[key])
        assert snapshot(outside, root) == before_out
        assert sorted(os.listdir(tmp_path)) == before_parent  # nothing beside the destination


# ==================================================================================================
# 3. The controller on scripted curves
# ==================================================================================================
def test_a_throttle_at_the_fewest_still_halves_the_level() -> None:
    """The store's request wins over the step-down's floor: ``fewest`` bounds what the rate
    decides, and a 503/429 at the fewest (4, as bulk uses) still halves to 2 and settles there."""
    clocks = Clocks()
    rates = {4: 60, 8: 56, 16: 48, 32: 46}
    c = clocks.controller(start=16, maximum=64, fewest=4)
    # Drive until the step-down has reached the fewest, then throttle before it is measured.
    for _ in range(400):
        if c.limit == 4:
            break
        drive(clocks, c, lambda n: rates[n] * MiB, lambda n: 0.5, 0.05)
    assert c.limit == 4 and not c.settled
    c.throttled(clocks.now)
    assert c.settled and c.limit == 2
    drive(clocks, c, lambda n: 100 * MiB, lambda n: 0.1, 2)
    assert c.limit == 2  # no growth after the store asked to slow down


def test_random_curves_keep_the_bounds_settle_and_never_keep_a_losing_level() -> None:
    """PASSES (pins the step-down): 3,000 seeded random curves (rates per level, CPU-bound or
    not): every limit taken lies in [fewest, maximum], the controller settles, a level tried
    on the way down is never kept when it lost more than 5 % of the best rate measured before
    it, and the level it settles at was measured (or is the start level before any decision)."""
    rng = random.Random(20261124)
    for _ in range(3000):
        start = rng.choice([4, 8, 16])
        maximum = rng.choice([start, start * 2, 64])
        fewest = rng.choice([1, 2, 4, start])
        levels = {1, 2, 4, 8, 16, 32, 64, start, maximum}
        rates = {n: rng.uniform(10, 100) for n in levels}
        busy = rng.choice([0.2, 0.9])
        clocks = Clocks()
        c = clocks.controller(start=start, maximum=maximum, fewest=fewest, cores=2)
        seen: list[int] = []
        c.on_change(lambda c=c, seen=seen: seen.append(c.limit))
        drive(clocks, c, lambda n, rates=rates: rates[n] * MiB, lambda n, busy=busy: busy, 20)
        assert c.settled, (start, maximum, fewest, rates, c.history)
        for level in [*seen, c.limit]:
            assert min(fewest, start) <= level <= maximum, (level, c.history)
        measured = {limit: rate for limit, rate in c.history}
        assert c.limit in measured, (c.limit, c.history)
        assert len(c.history) <= 12
        if c._shrinking:
            best = max(rate for _, rate in c.history)
            assert measured[c.limit] >= 0.95 * best * 0.99 or c.limit == c._best_limit, c.history


# ==================================================================================================
# 4. Real bulk runs with the step-down
# ==================================================================================================
class Scripted(LinkController):
    """The real controller, with each window judged at a scripted rate per level (windows close
    at every round: one object each from every thread of the level)."""

    rates: dict[int, float] = {}
    busy = 0.5
    made: list[Scripted] = []
    taken: list[int]

    def __post_init__(self) -> None:
        super().__post_init__()
        self.window_bytes, self.window_seconds = 1, 0.0
        self.taken = [self.limit]
        self.throttles = 0
        Scripted.made.append(self)

    def _decide(self, rate: float, busy: float) -> None:
        super()._decide(self.rates[self.limit] * MiB, self.busy)
        self.taken.append(self.limit)

    def throttled(self, now: float) -> None:
        self.throttles += 1
        super().throttled(now)


def seed_small(s3, name: str, count: int) -> tuple[str, dict[str, bytes]]:
    base = f"s3://{BUCKET}/{unique_prefix()}{name}/"
    data = {f"k{i:04d}": (b"%06d" % i) * 700 for i in range(count)}

    seed_all(s3, base, data)
    return base, data


@pytest.fixture
def small_objects(s3) -> tuple[str, dict[str, bytes]]:
    return seed_small(s3, "stepdown", 300)


@pytest.mark.parametrize(
    ("rates", "settled_at"),
    [({4: 60, 8: 56, 16: 48, 32: 46, 64: 1}, 4), ({4: 10, 8: 20, 16: 40, 32: 41, 64: 1}, 16)],
    ids=["down-to-4", "undone-to-16"],
)
def test_a_bulk_run_follows_the_stepped_down_level_with_one_row_each(
    s3, small_objects, tmp_path, state_dir, monkeypatch, rates, settled_at
) -> None:
    """PASSES (pins threads following the level): a real download of 300 objects whose link
    steps down to 4 (or tries 8 and goes back to 16): one row per object, the bytes identical,
    no hang, and after the last change the objects move on no more threads than the level."""
    base, data = small_objects
    monkeypatch.setattr(Scripted, "rates", rates)
    monkeypatch.setattr(Scripted, "made", [])
    monkeypatch.setattr(bulk_module, "LinkController", Scripted)
    movers: list[tuple[int, int]] = []  # (thread, level) per object begun
    real_download = bulk_module.download

    def download(*args, **kwargs):
        link = Scripted.made[-1]
        movers.append((threading.get_ident(), link.limit if link.settled else -1))
        return real_download(*args, **kwargs)

    monkeypatch.setattr(bulk_module, "download", download)
    rows: list[ManifestRow] = []
    dest = str(tmp_path / "dest")
    bounded(
        lambda: bulk_transfer(
            s3, FerryLocalHook(), base, dest + "/", BulkOptions(state_dir=state_dir), on_row=rows.append
        )
    )
    assert Counter(r.source for r in rows) == Counter(base + k for k in data)
    assert {r.result for r in rows} == {"OK"}
    for key, body in data.items():
        with open(os.path.join(dest, key), "rb") as f:
            assert f.read() == body
    link = Scripted.made[-1]
    assert link.settled and link.limit == settled_at, link.taken
    after = [who for who, level in movers if level == settled_at]
    assert len(after) > 64
    assert len(set(after[-40:])) <= settled_at


def test_a_throttle_in_a_bulk_run_reaches_the_objects_in_flight(s3_proxy, tmp_path, state_dir, monkeypatch) -> None:
    """A 503 SlowDown answered to an object's GET in a bulk run reaches the objects-in-flight
    controller (each object's requests have no controller of their own: their retry policy tells
    the run's). Before the fix the run's controller heard nothing and kept stepping down as if
    the store had not asked to slow down. The SlowDowns come from a real proxy in front of
    SeaweedFS, after the first 40 objects (the level is moving then); fewer than the attempts,
    so every object still arrives."""
    via_proxy, direct, proxy = s3_proxy
    base = f"s3://{PROXY_BUCKET}/{unique_prefix()}throttle/"
    data = {f"k{i:04d}": (b"%06d" % i) * 700 for i in range(300)}
    seed_all(direct, base, data)
    monkeypatch.setattr(Scripted, "rates", {4: 60, 8: 56, 16: 48, 32: 46, 64: 1})
    monkeypatch.setattr(Scripted, "made", [])
    monkeypatch.setattr(bulk_module, "LinkController", Scripted)
    f = proxy.faults
    f.error_status, f.error_times, f.error_body = 503, FAST_RETRY.attempts - 1, SLOWDOWN
    f.only_path, f.error_after_requests = "throttle/k", 40  # object GETs only, not the listing
    rows: list[ManifestRow] = []
    dest = str(tmp_path / "dest")
    bounded(
        lambda: bulk_transfer(
            via_proxy,
            FerryLocalHook(),
            base,
            dest + "/",
            BulkOptions(state_dir=state_dir, retry=FAST_RETRY),
            on_row=rows.append,
        )
    )
    assert Counter(r.source for r in rows) == Counter(base + k for k in data)
    assert {r.result for r in rows} == {"OK"}
    for key, body in data.items():
        with open(os.path.join(dest, key), "rb") as fh:
            assert fh.read() == body
    assert proxy.fired["error"] == FAST_RETRY.attempts - 1
    link = Scripted.made[-1]
    assert link.throttles > 0, f"the objects-in-flight controller heard no SlowDown: {link.taken}"
    assert link.settled
