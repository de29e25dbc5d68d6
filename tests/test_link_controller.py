"""The connection controller's decisions on scripted rate curves (fake clocks, no timing asserts)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from ferry_provider.hooks.errors import InvalidArgumentError
from ferry_provider.transfer.bulk import BulkOptions
from ferry_provider.transfer.link_controller import LinkController
from ferry_provider.transfer.pool import run_parts

MiB = 1 << 20


class Clocks:
    """A wall clock and a CPU clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0
        self.cpu = 0.0

    def controller(self, **kwargs: object) -> LinkController:
        return LinkController(clock=lambda: self.now, cpu_clock=lambda: self.cpu, **kwargs)  # type: ignore[arg-type]


def drive(
    clocks: Clocks,
    c: LinkController,
    rate_of: Callable[[int], float],
    busy_of: Callable[[int], float],
    seconds: float,
    tick: float = 0.05,
) -> LinkController:
    """Each of the ``limit`` connections reports its share of ``rate_of(limit)`` bytes/s once per
    ``tick``, at its own moment in it (from its own thread id), while the process uses
    ``busy_of(limit)`` of the cores."""
    for _ in range(round(seconds / tick)):
        limit = c.limit
        for conn in range(limit):
            clocks.now += tick / limit
            clocks.cpu += busy_of(limit) * c.cores * tick / limit
            c.observe(int(rate_of(limit) / limit * tick), who=conn)
    return c


def test_a_capped_link_gets_connections_until_the_link_is_full_and_no_more() -> None:
    """35 MiB/s per connection, 300 MiB/s for the link (the nginx-shaped cloud link)."""
    clocks = Clocks()
    c = drive(clocks, clocks.controller(start=4, maximum=64), lambda n: min(35 * n, 300) * MiB, lambda n: 0.2, 5)
    assert c.settled
    assert [limit for limit, _ in c.history[:3]] == [4, 8, 16]  # doubles while it pays
    assert c.history[0][1] == pytest.approx(4 * 35 * MiB, rel=0.01)  # the link's rate, not inflated
    assert c.limit == 8  # the fewest connections near 300 MiB/s: 16 added less than 10 %
    assert min(35 * c.limit, 300) >= 0.9 * 300


def test_a_fast_local_link_keeps_few_connections() -> None:
    """Loopback: the first connections already get what the server gives; more only cost CPU."""
    clocks = Clocks()
    c = drive(clocks, clocks.controller(start=4, maximum=64), lambda n: 900 * MiB, lambda n: 0.3, 2)
    assert c.settled and c.limit == 4


def test_a_cpu_bound_process_stops_growing() -> None:
    clocks = Clocks()
    c = drive(clocks, clocks.controller(start=4, maximum=64, cores=2), lambda n: 40 * n * MiB, lambda n: 0.9, 2)
    assert c.settled and c.limit == 4


@pytest.mark.parametrize(
    ("rate_of", "fewest", "settled_at", "levels"),
    [
        # Many small objects on a busy machine: each one more in flight costs hand-offs, not
        # bytes. From 16, 32 does not pay; 8 and then 4 are faster; 4 is the fewest allowed.
        (lambda n: {4: 60, 8: 56, 16: 48, 32: 46}[n], 4, 4, [16, 32, 8, 4]),
        # Within 5 % of the best is held (8 here); a step that loses more is undone (4 here).
        (lambda n: {4: 40, 8: 48.5, 16: 50, 32: 51}[n], 2, 8, [16, 32, 8, 4]),
        # A link that 16 connections fill (32 add nothing): 8 give half, so it goes back to 16.
        (lambda n: min(35 * n, 500), 4, 16, [16, 32, 8]),
    ],
    ids=["fewer-lose-nothing", "stops-where-the-rate-held", "long-round-trip-undone"],
)
def test_given_a_floor_it_steps_down_while_fewer_lose_nothing(
    rate_of: Callable[[int], float], fewest: int, settled_at: int, levels: list[int]
) -> None:
    clocks = Clocks()
    c = drive(
        clocks, clocks.controller(start=16, maximum=64, fewest=fewest), lambda n: rate_of(n) * MiB, lambda n: 0.5, 5
    )
    assert c.settled and c.limit == settled_at
    assert [limit for limit, _ in c.history] == levels


def test_growth_that_paid_is_never_stepped_down() -> None:
    clocks = Clocks()
    c = drive(
        clocks, clocks.controller(start=4, maximum=64, fewest=1), lambda n: min(35 * n, 300) * MiB, lambda n: 0.2, 5
    )
    assert c.settled and c.limit == 8  # as without a floor: 16 added less than 10 %
    assert [limit for limit, _ in c.history] == [4, 8, 16]


def test_cpu_bound_at_the_start_with_a_floor_steps_down() -> None:
    clocks = Clocks()
    c = drive(clocks, clocks.controller(start=8, maximum=64, fewest=2, cores=2), lambda n: 40 * MiB, lambda n: 0.9, 5)
    assert c.settled and c.limit == 2
    assert [limit for limit, _ in c.history] == [8, 4, 2]


def test_the_maximum_and_throttling_bound_it() -> None:
    clocks = Clocks()
    c = drive(clocks, clocks.controller(start=4, maximum=12), lambda n: 50 * n * MiB, lambda n: 0.1, 2)
    assert c.limit == 12 and c.settled
    heard: list[int] = []
    c.on_change(lambda: heard.append(c.limit))
    c.throttled(100.0)
    c.throttled(100.1)  # parts throttled together are one signal
    assert c.limit == 6 and heard == [6]  # the pool is told at once
    drive(clocks, c, lambda n: 50 * n * MiB, lambda n: 0.1, 2)
    assert c.limit == 6  # no growth after the store asked to slow down


def test_a_window_waits_for_enough_bytes_and_time() -> None:
    clocks = Clocks()
    c = clocks.controller(start=1, maximum=32, window_bytes=64 * MiB, window_seconds=0.5)
    c.observe(MiB, who=1)  # opens the window; not counted in it
    clocks.now = 1.0
    c.observe(10 * MiB, who=1)  # long enough, not large enough
    assert c.history == [] and c.limit == 1
    clocks.now = 1.2
    c.observe(60 * MiB, who=1)
    assert c.history == [(1, 70 * MiB / 1.2)] and c.limit == 2


def test_new_connections_are_not_measured_before_they_deliver() -> None:
    """After growing from 4 to 8, the 4 new connections take a while to send their first bytes
    (connecting, the first byte's round trip). The old 4 go on meanwhile; their bytes alone must
    not be read as "8 connections give no more than 4"."""
    clocks = Clocks()
    c = clocks.controller(start=4, maximum=8)
    while c.limit == 4:
        drive(clocks, c, lambda n: 30 * n * MiB, lambda n: 0.1, 0.05)
    assert c.limit == 8 and not c.settled and len(c.history) == 1
    for _ in range(40):  # half a second in which only the first 4 deliver, at their old rate
        clocks.now += 0.0125
        c.observe(int(30 * MiB * 0.05), who=_ % 4)
    assert not c.settled and len(c.history) == 1  # no window opened without the new ones
    drive(clocks, c, lambda n: 30 * n * MiB, lambda n: 0.1, 0.5)
    assert c.history[1][0] == 8 and c.history[1][1] > 1.9 * c.history[0][1]
    assert c.settled and c.limit == 8


def test_bytes_reported_a_part_at_a_time_give_the_true_rate() -> None:
    """Uploads report a part as it ends, and parts started together end together: 8 parts of
    8 MiB every 0.25 s is 256 MiB/s, however the windows fall on those bursts."""
    clocks = Clocks()
    c = clocks.controller(start=8, maximum=8, window_bytes=MiB, window_seconds=0.2)
    for _ in range(6):
        clocks.now += 0.25
        for conn in range(8):
            c.observe(8 * MiB, who=conn)
    assert c.history and all(rate == 256 * MiB for _, rate in c.history)


def test_a_transfer_shorter_than_a_window_decides_nothing() -> None:
    clocks = Clocks()
    c = drive(clocks, clocks.controller(start=4, maximum=32), lambda n: 100 * n * MiB, lambda n: 0.1, 0.15)
    assert c.history == [] and c.limit == 4 and not c.settled


def test_the_pool_has_no_more_threads_than_the_gate_allows() -> None:
    """Each thread keeps its part buffer between parts (a pipeline copy: 8 MiB a part), so a
    pool of 32 threads under a limit of 4 would hold 32 buffers, not 4."""
    clocks = Clocks()
    gate = clocks.controller(start=2, maximum=4)
    threads: set[str] = set()
    running = 0
    most = 0
    lock = threading.Lock()

    def job(_: int) -> None:
        nonlocal running, most
        with lock:
            threads.add(threading.current_thread().name)
            running += 1
            most = max(most, running)
        time.sleep(0.01)  # long enough for the pool to start every thread it has
        with lock:
            running -= 1

    run_parts(job, list(range(40)), 32, threading.Event(), "t", gate=gate)
    assert 1 <= len(threads) <= 4 and most <= 2  # the limit held; only the maximum's threads exist


def test_bulk_objects_in_flight_are_chosen_by_the_link_unless_given() -> None:
    """Unset, up to 64 objects may be in flight (the link chooses how many of them move), with a
    connection for each; given, exactly that many, with twice as many connections."""
    chosen = BulkOptions()
    assert chosen.concurrency is None and chosen.most_in_flight == 64 and chosen.connections == 64
    assert BulkOptions(max_connections=8).most_in_flight == 8  # never more objects than connections
    fixed = BulkOptions(concurrency=4, parallelism=8)
    assert fixed.most_in_flight == 4 and fixed.connections == 8
    with pytest.raises(InvalidArgumentError, match="concurrency must be a whole number >= 1, got 0"):
        BulkOptions(concurrency=0)
