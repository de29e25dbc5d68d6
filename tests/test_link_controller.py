"""The connection controller's decisions on scripted rate curves (no clock, no timing asserts)."""

from __future__ import annotations

from collections.abc import Callable

from ferry_provider.transfer.link_controller import LinkController

MiB = 1 << 20


def drive(controller: LinkController, rate_of: Callable[[int], float], busy_of: Callable[[int], float], windows: int):
    """Feed ``windows`` one-second windows whose rate (bytes/s) and CPU share follow the curves,
    for whatever limit the controller has set."""
    now = cpu = 0.0
    controller.observe(0, now, cpu)
    for _ in range(windows):
        limit = controller.limit
        now += 1.0
        cpu += busy_of(limit) * controller.cores
        controller.observe(int(rate_of(limit)), now, cpu)
    return controller


def test_a_capped_link_gets_connections_until_the_link_is_full_and_no_more() -> None:
    """35 MiB/s per connection, 300 MiB/s for the link (the nginx-shaped cloud link)."""
    c = drive(LinkController(start=4, maximum=64, window_bytes=1), lambda n: min(35 * n, 300) * MiB, lambda n: 0.2, 20)
    assert c.settled
    assert [limit for limit, _ in c.history[:3]] == [4, 8, 16]  # doubles while it pays
    assert c.limit == 8  # the fewest connections near 300 MiB/s: 16 added less than 10 %
    assert min(35 * c.limit, 300) >= 0.9 * 300


def test_a_fast_local_link_keeps_few_connections() -> None:
    """Loopback: one connection already gets what the server gives; more only cost CPU."""
    c = drive(LinkController(start=4, maximum=64, window_bytes=1), lambda n: 900 * MiB, lambda n: 0.3, 10)
    assert c.settled and c.limit == 4


def test_a_cpu_bound_process_stops_growing() -> None:
    c = drive(LinkController(start=4, maximum=64, window_bytes=1, cores=2), lambda n: 40 * n * MiB, lambda n: 0.9, 5)
    assert c.settled and c.limit == 4


def test_the_maximum_and_throttling_bound_it() -> None:
    c = drive(LinkController(start=4, maximum=12, window_bytes=1), lambda n: 50 * n * MiB, lambda n: 0.1, 10)
    assert c.limit == 12 and c.settled
    c.throttled(100.0)
    c.throttled(100.1)  # parts throttled together are one signal
    assert c.limit == 6
    drive(c, lambda n: 50 * n * MiB, lambda n: 0.1, 5)
    assert c.limit == 6  # no growth after the store asked to slow down


def test_small_windows_wait_for_enough_bytes() -> None:
    c = LinkController(start=4, maximum=32, window_bytes=64 * MiB, window_seconds=0.5)
    c.observe(0, 0.0, 0.0)
    c.observe(10 * MiB, 1.0, 0.1)  # long enough, not large enough
    assert c.history == [] and c.limit == 4
    c.observe(60 * MiB, 1.2, 0.1)
    assert len(c.history) == 1 and c.limit == 8
