"""The readability gate: what the wall clock may close, and the quiet clock, on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stream.readability import AlwaysReadable, InputGate

W0 = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)
S, C = "sleep.sessions", "sleep.samples"


def _wall(t: float) -> datetime:
    return W0 + timedelta(seconds=t)


def _check(gate: InputGate, t: float, ends: tuple[int, int], processed: tuple[int, int],
           partition: int = 0) -> float | None:
    return gate.checked(partition, {S: ends[0], C: ends[1]},
                        {S: processed[0], C: processed[1]}, _wall(t), now=t)


def test_without_checks_the_input_is_always_complete() -> None:
    clock = AlwaysReadable(lambda: 12.5)
    assert clock.quiet_time(3) == 12.5
    assert clock.complete_until(3, _wall(7)) == _wall(7)


def test_nothing_closes_by_the_clock_before_the_first_check() -> None:
    gate = InputGate(30.0)
    assert gate.complete_until(0, _wall(5), now=5) is None
    assert gate.readable() is None
    assert gate.quiet_time(0, now=5) == 5  # no outage known: the quiet clock runs


def test_complete_until_the_latest_check_the_agent_has_processed() -> None:
    gate = InputGate(30.0)
    assert _check(gate, 10, ends=(3, 50), processed=(3, 50)) is None
    assert gate.complete_until(0, _wall(10.5), now=10.5) == _wall(10)
    # new chunks on the broker, not processed yet: still complete only up to t=10
    _check(gate, 11, ends=(3, 60), processed=(3, 55))
    assert gate.complete_until(0, _wall(11.5), now=11.5) == _wall(10)
    # under steady load the agent never catches up with the latest check, but it passes
    # the end offsets of an earlier one: complete up to that earlier check
    _check(gate, 12, ends=(3, 70), processed=(3, 62))
    assert gate.complete_until(0, _wall(12.5), now=12.5) == _wall(11)
    _check(gate, 13, ends=(3, 80), processed=(3, 80))
    assert gate.complete_until(0, _wall(13.5), now=13.5) == _wall(13)
    # both topics count: a session event not processed holds the partition back
    _check(gate, 14, ends=(4, 80), processed=(3, 80))
    assert gate.complete_until(0, _wall(14.5), now=14.5) == _wall(13)
    # never later than the wall time asked about
    assert gate.complete_until(0, _wall(12), now=14.5) == _wall(12)


def test_an_outage_stops_wall_clock_closing_and_the_quiet_clock() -> None:
    gate = InputGate(30.0)
    _check(gate, 100, ends=(1, 10), processed=(1, 10))
    assert gate.failed([0, 1], now=101) == [0, 1]
    assert gate.failed([0, 1], now=106) == []  # the same outage
    assert gate.outages == 1 and gate.readable() is False
    assert gate.complete_until(0, _wall(110), now=110) is None
    # the quiet clock stands still at the start of the outage
    assert gate.quiet_time(0, now=101) == gate.quiet_time(0, now=170) == 101
    assert gate.unreadable_s(now=170) == 69
    # back after 70 s: nothing closes by the clock for grace_s, while the backlog arrives
    assert _check(gate, 171, ends=(1, 40), processed=(1, 40)) == 70
    assert gate.readable() is False  # partition 1 not checked yet
    assert gate.complete_until(0, _wall(180), now=180) is None
    _check(gate, 200, ends=(1, 45), processed=(1, 45))
    assert gate.complete_until(0, _wall(200.5), now=200.5) is None
    assert gate.complete_until(0, _wall(201), now=201) == _wall(200)
    # the quiet clock goes on from where it stopped
    assert gate.quiet_time(0, now=171) == 101
    assert gate.quiet_time(0, now=201) == 131


def test_a_partition_handed_back_after_an_outage_still_waits_the_grace_period() -> None:
    gate = InputGate(20.0)
    _check(gate, 0, ends=(0, 5), processed=(0, 5))
    gate.failed([0], now=1)
    _check(gate, 70, ends=(0, 9), processed=(0, 5))
    gate.forget([0])  # the rebalance that follows the broker's return
    _check(gate, 71, ends=(0, 9), processed=(0, 9))
    assert gate.complete_until(0, _wall(85), now=85) is None
    assert gate.complete_until(0, _wall(90), now=90) == _wall(71)
    # forgetting drops what was processed, not the outage's clock
    assert gate.quiet_time(0, now=90) == 90 - 69


def test_a_partition_revoked_during_an_outage_no_longer_counts() -> None:
    gate = InputGate(30.0)
    for p in (0, 1):
        _check(gate, 0, ends=(0, 1), processed=(0, 1), partition=p)
    gate.failed([0, 1], now=1)
    gate.forget([1])  # handed to another worker when the broker came back
    _check(gate, 60, ends=(0, 1), processed=(0, 1), partition=0)
    assert gate.readable() is True and gate.unreadable_s(now=100) == 59
    # handed back later: still waiting for its first check, then for the grace period
    assert _check(gate, 200, ends=(0, 1), processed=(0, 1), partition=1) == 199
    assert gate.complete_until(1, _wall(220), now=220) is None
    assert gate.complete_until(1, _wall(230), now=230) == _wall(200)


def test_outages_are_per_partition() -> None:
    gate = InputGate(30.0)
    _check(gate, 0, ends=(0, 1), processed=(0, 1), partition=0)
    _check(gate, 0, ends=(0, 1), processed=(0, 1), partition=1)
    gate.failed([1], now=1)
    assert gate.complete_until(0, _wall(40), now=40) == _wall(0)
    assert gate.complete_until(1, _wall(40), now=40) is None
    assert gate.quiet_time(0, now=40) == 40 and gate.quiet_time(1, now=40) == 1


@pytest.mark.parametrize("grace_s", [-1.0, float("nan"), float("inf")])
def test_a_bad_grace_period_is_refused(grace_s: float) -> None:
    with pytest.raises(ValueError, match="grace_s must be a finite number"):
        InputGate(grace_s)
