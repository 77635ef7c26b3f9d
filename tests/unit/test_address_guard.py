"""vms.access.address_guard: failures per address in a sliding window, lockout, throttled refusal reports."""

from __future__ import annotations

from vms.access.address_guard import AddressGuard


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_failures_outside_the_window_do_not_count_and_the_lock_ends_with_the_window():
    clock = Clock()
    g = AddressGuard(3, 60, clock)
    assert not g.failed("a") and not g.failed("a")
    clock.t += 61  # both are older than the window now
    assert not g.failed("a") and not g.failed("a") and g.retry_after("a") == 0
    assert g.failed("a")  # the third within 60 s locks
    assert g.retry_after("a") == 60 - 0 and g.retry_after("b") == 0  # until the oldest of the three is 60 s old
    clock.t += 59.5
    assert g.retry_after("a") == 0.5
    clock.t += 0.5
    assert g.retry_after("a") == 0 and not g.failed("a")  # counting starts afresh


def test_refusals_are_reported_once_per_interval_with_the_count():
    clock = Clock()
    g = AddressGuard(3, 60, clock)
    assert g.refused("a") == 1
    assert g.refused("a") is None and g.refused("a") is None and g.refused("b") == 1
    clock.t += 60
    assert g.refused("a") == 3  # this one and the two unreported


def test_memory_is_bounded():
    clock = Clock()
    g = AddressGuard(2, 60, clock)
    g.MAX_ADDRESSES = 100
    for i in range(1000):
        g.failed(f"10.0.{i // 256}.{i % 256}")
        g.failed(f"10.0.{i // 256}.{i % 256}")  # each address locks
        g.refused(f"10.0.{i // 256}.{i % 256}")
    assert len(g._fails) <= 101 and len(g._refusals) <= 101
    clock.t += 61
    g.failed("x")
    g.failed("x")  # the next lock purges expired ones
    assert len(g._locked_until) <= 101


def test_an_address_that_keeps_failing_is_not_the_one_forgotten():
    """The table is bounded; the address forgotten first is the one that failed least recently."""
    clock = Clock()
    g = AddressGuard(20, 600, clock)
    g.MAX_ADDRESSES = 100
    guesser = "203.0.113.7"
    others = iter(f"10.0.{n // 256}.{n % 256}" for n in range(1000))
    for burst, then in ((10, 60), (5, 60)):  # the second round of others overflows the table
        for _ in range(burst):
            assert not g.failed(guesser)
        for _ in range(then):
            g.failed(next(others))
    assert [g.failed(guesser) for _ in range(5)] == [False] * 4 + [True]  # its 20th failure locks it
    assert len(g._fails) <= 101


def test_loopback_and_unknown_addresses_are_not_counted():
    """A local reverse proxy's one address stands for every user behind it: never locked out."""
    g = AddressGuard(2, 60, Clock())
    for client in ("127.0.0.1", "127.8.9.1", "::1", ""):
        assert [g.failed(client) for _ in range(5)] == [False] * 5 and g.retry_after(client) == 0
    assert [g.failed("192.0.2.1") for _ in range(2)] == [False, True]
