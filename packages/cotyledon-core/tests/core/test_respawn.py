"""Tests of the respawn backoff: ``RespawnPolicy`` and ``RespawnLimiter``."""

from __future__ import annotations

import math
import re

import pytest

from cotyledon.core import RespawnLimiter
from cotyledon.core import RespawnPolicy
from cotyledon.core import ServiceSpec
from cotyledon.core import Slot
from cotyledon.core import WorkerId

# With a random fraction of 0.5 the jitter moves a delay by nothing, so the
# delays of these tests are exact.
NO_JITTER = 0.5


def _slot(spec: ServiceSpec, worker_id: int) -> Slot:
    return Slot(spec.service_id, WorkerId(worker_id))


def _limiter(policy: RespawnPolicy, fraction: float = NO_JITTER) -> RespawnLimiter:
    return RespawnLimiter(policy, lambda: fraction)


def _quick_deaths(limiter: RespawnLimiter, slot: Slot, count: int) -> list[float]:
    """Start and kill the slot's worker ``count`` times, 1 ms apart."""
    delays = []
    for number in range(count):
        now = number * 0.001
        limiter.record_start(slot, now)
        delays.append(limiter.delay_after_exit(slot, now))
    return delays


def test_limiter_first_restart_is_immediate(web_spec: ServiceSpec) -> None:
    limiter = _limiter(RespawnPolicy())
    slot = _slot(web_spec, 0)
    limiter.record_start(slot, 0.0)

    delay = limiter.delay_after_exit(slot, 0.5)

    assert delay == 0.0


def test_limiter_delays_grow_to_max(web_spec: ServiceSpec) -> None:
    policy = RespawnPolicy(initial_delay=0.1, max_delay=1.0, multiplier=2.0, jitter=0.1)
    limiter = _limiter(policy)

    delays = _quick_deaths(limiter, _slot(web_spec, 0), 8)

    assert delays == pytest.approx([0.0, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])


def test_limiter_delays_follow_multiplier(web_spec: ServiceSpec) -> None:
    policy = RespawnPolicy(initial_delay=0.5, max_delay=100.0, multiplier=3.0, jitter=0.0)
    limiter = _limiter(policy)

    delays = _quick_deaths(limiter, _slot(web_spec, 0), 5)

    assert delays == pytest.approx([0.0, 0.5, 1.5, 4.5, 13.5])


def test_policy_small_multiplier_reaches_max() -> None:
    policy = RespawnPolicy(initial_delay=0.1, max_delay=30.0, multiplier=1.05, jitter=0.1)

    delay = policy.delay(10_000, NO_JITTER)

    assert delay == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("fraction", "factor"),
    [(0.0, 0.9), (0.5, 1.0), (0.999, 1.0998)],
)
def test_jitter_scales_delay_by_fraction(
    web_spec: ServiceSpec, fraction: float, factor: float
) -> None:
    policy = RespawnPolicy(initial_delay=2.0, max_delay=30.0, multiplier=2.0, jitter=0.1)
    limiter = _limiter(policy, fraction)

    delays = _quick_deaths(limiter, _slot(web_spec, 0), 3)

    assert delays == pytest.approx([0.0, 2.0 * factor, 4.0 * factor])


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.999])
@pytest.mark.parametrize("failures", [2, 3, 6, 20])
def test_jitter_stays_within_bounds(fraction: float, failures: int) -> None:
    policy = RespawnPolicy(initial_delay=1.0, max_delay=8.0, multiplier=2.0, jitter=0.25)
    base = min(8.0, 1.0 * 2.0 ** (failures - 2))

    delay = policy.delay(failures, fraction)

    assert delay >= base * 0.75
    assert delay < base * 1.25


def test_limiter_resets_after_stable_run(web_spec: ServiceSpec) -> None:
    limiter = _limiter(RespawnPolicy(stable_after=10.0))
    slot = _slot(web_spec, 0)
    _quick_deaths(limiter, slot, 4)
    limiter.record_start(slot, 100.0)

    delay = limiter.delay_after_exit(slot, 110.0)

    assert delay == 0.0
    assert limiter.failures(slot) == 1


def test_limiter_short_run_keeps_count(web_spec: ServiceSpec) -> None:
    limiter = _limiter(RespawnPolicy(initial_delay=0.1, multiplier=2.0, stable_after=10.0))
    slot = _slot(web_spec, 0)
    _quick_deaths(limiter, slot, 4)
    limiter.record_start(slot, 100.0)

    delay = limiter.delay_after_exit(slot, 109.999)

    assert delay == pytest.approx(0.8)
    assert limiter.failures(slot) == 5


def test_limiter_slots_are_independent(web_spec: ServiceSpec) -> None:
    limiter = _limiter(RespawnPolicy())
    looping = _slot(web_spec, 0)
    other = _slot(web_spec, 1)
    _quick_deaths(limiter, looping, 6)
    limiter.record_start(other, 1.0)

    delay = limiter.delay_after_exit(other, 1.0)

    assert delay == 0.0
    assert limiter.failures(other) == 1
    assert limiter.failures(looping) == 6


def test_limiter_forget_drops_history(web_spec: ServiceSpec) -> None:
    limiter = _limiter(RespawnPolicy())
    slot = _slot(web_spec, 0)
    _quick_deaths(limiter, slot, 5)

    limiter.forget(slot)

    assert limiter.failures(slot) == 0
    assert _quick_deaths(limiter, slot, 1) == [0.0]


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(RespawnPolicy(), id="default"),
        pytest.param(RespawnPolicy(initial_delay=1.0, max_delay=60.0, multiplier=10.0), id="x10"),
        pytest.param(RespawnPolicy(initial_delay=0.0, max_delay=5.0), id="zero-initial"),
        # 1e6 ** 52 is past the largest float, so this policy overflows
        # after about 54 deaths in a row unless the growth is capped.
        pytest.param(RespawnPolicy(initial_delay=0.1, max_delay=30.0, multiplier=1e6), id="x1e6"),
    ],
)
def test_limiter_ten_thousand_failures_stay_finite(
    web_spec: ServiceSpec, policy: RespawnPolicy
) -> None:
    limiter = _limiter(policy, 0.999)

    delays = _quick_deaths(limiter, _slot(web_spec, 0), 10_000)

    assert math.isfinite(delays[-1])
    assert delays[-1] <= policy.max_delay * (1 + policy.jitter)


def test_spawn_failure_new_slot_backs_off(web_spec: ServiceSpec) -> None:
    limiter = _limiter(RespawnPolicy(initial_delay=0.1))

    delay = limiter.delay_after_spawn_failure(_slot(web_spec, 0))

    assert delay == pytest.approx(0.1)


def test_spawn_failures_keep_growing(web_spec: ServiceSpec) -> None:
    limiter = _limiter(RespawnPolicy(initial_delay=0.1, max_delay=30.0, multiplier=2.0))
    slot = _slot(web_spec, 0)

    delays = [limiter.delay_after_spawn_failure(slot) for _ in range(4)]

    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8])


def test_spawn_failure_after_reset_backs_off(web_spec: ServiceSpec) -> None:
    limiter = _limiter(RespawnPolicy(initial_delay=0.1, stable_after=10.0))
    slot = _slot(web_spec, 0)
    _quick_deaths(limiter, slot, 3)
    limiter.record_start(slot, 100.0)
    limiter.delay_after_exit(slot, 200.0)

    delay = limiter.delay_after_spawn_failure(slot)

    assert delay == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("initial_delay", -0.1),
        ("max_delay", -1.0),
        ("multiplier", 0.5),
        ("multiplier", 0.0),
        ("jitter", 1.0),
        ("jitter", -0.01),
        ("jitter", math.nan),
        ("stable_after", -5.0),
        ("initial_delay", math.nan),
        ("max_delay", math.nan),
        ("multiplier", math.nan),
        ("multiplier", math.inf),
        ("stable_after", math.nan),
    ],
)
def test_policy_invalid_value_raises(field: str, value: float) -> None:
    expected = rf"{field}\b.*{re.escape(repr(value))}"

    with pytest.raises(ValueError, match=expected):
        RespawnPolicy(**{field: value})


def test_policy_accepts_boundary_values() -> None:
    policy = RespawnPolicy(
        initial_delay=0.0, max_delay=0.0, multiplier=1.0, jitter=0.0, stable_after=0.0
    )

    delay = policy.delay(5, 0.999)

    assert delay == 0.0


def test_policy_repr_lists_fields() -> None:
    policy = RespawnPolicy(initial_delay=0.25, max_delay=8.0)

    text = repr(policy)

    assert text == (
        "RespawnPolicy(initial_delay=0.25, max_delay=8.0, multiplier=2.0, "
        "jitter=0.1, stable_after=10.0)"
    )


def test_limiter_repr_counts_slots(web_spec: ServiceSpec) -> None:
    policy = RespawnPolicy()
    limiter = _limiter(policy)
    _quick_deaths(limiter, _slot(web_spec, 0), 3)
    _quick_deaths(limiter, _slot(web_spec, 1), 1)

    text = repr(limiter)

    assert text == f"<RespawnLimiter slots=2 backing_off=1 policy={policy!r}>"
