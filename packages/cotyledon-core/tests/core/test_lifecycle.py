"""Tests of the lifecycle tables, their checks and their documentation."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from cotyledon.core import PHASE_TRANSITIONS
from cotyledon.core import SLOT_TRANSITIONS
from cotyledon.core import InvalidTransitionError
from cotyledon.core import ManagerPhase
from cotyledon.core import SlotState
from cotyledon.core import SlotTrigger
from cotyledon.core import render_slot_table
from cotyledon.core._lifecycle import check_phase_move
from cotyledon.core._lifecycle import check_slot_move

TABLE_START = "<!-- slot-table:start -->\n"
TABLE_END = "<!-- slot-table:end -->"

SlotMove = tuple[SlotState, SlotTrigger, SlotState]
PhaseMove = tuple[ManagerPhase, ManagerPhase]

LISTED_SLOT_MOVES: list[SlotMove] = [
    (state, trigger, target)
    for (state, trigger), targets in SLOT_TRANSITIONS.items()
    for target in sorted(targets, key=lambda target: target.value)
]
UNLISTED_SLOT_MOVES: list[SlotMove] = [
    move
    for move in itertools.product(SlotState, SlotTrigger, SlotState)
    if move not in LISTED_SLOT_MOVES
]
LISTED_PHASE_MOVES: list[PhaseMove] = [
    (phase, target)
    for phase, targets in PHASE_TRANSITIONS.items()
    for target in sorted(targets, key=lambda target: target.value)
]
UNLISTED_PHASE_MOVES: list[PhaseMove] = [
    move for move in itertools.product(ManagerPhase, ManagerPhase) if move not in LISTED_PHASE_MOVES
]


def _slot_move_id(move: SlotMove) -> str:
    state, trigger, target = move
    return f"{state.name}-{trigger.name}-{target.name}"


def _phase_move_id(move: PhaseMove) -> str:
    phase, target = move
    return f"{phase.name}-{target.name}"


def _repository_root() -> Path:
    """Return the folder of the workspace's lock file, above this file."""
    for folder in Path(__file__).resolve().parents:
        if (folder / "uv.lock").is_file():
            return folder
    raise FileNotFoundError(f"no uv.lock in any folder above {__file__}")


@pytest.mark.parametrize("move", LISTED_SLOT_MOVES, ids=_slot_move_id)
def test_slot_move_accepts_listed_move(move: SlotMove) -> None:
    state, trigger, target = move

    check_slot_move(state, trigger, target)


@pytest.mark.parametrize("move", UNLISTED_SLOT_MOVES, ids=_slot_move_id)
def test_slot_move_rejects_unlisted_move(move: SlotMove) -> None:
    state, trigger, target = move
    expected = f"slot move {state.name} --{trigger.name}--> {target.name} is not in"

    with pytest.raises(InvalidTransitionError, match=expected):
        check_slot_move(state, trigger, target)


@pytest.mark.parametrize("move", LISTED_PHASE_MOVES, ids=_phase_move_id)
def test_phase_move_accepts_listed_move(move: PhaseMove) -> None:
    phase, target = move

    check_phase_move(phase, target)


@pytest.mark.parametrize("move", UNLISTED_PHASE_MOVES, ids=_phase_move_id)
def test_phase_move_rejects_unlisted_move(move: PhaseMove) -> None:
    phase, target = move
    expected = f"manager move {phase.name} -> {target.name} is not in"

    with pytest.raises(InvalidTransitionError, match=expected):
        check_phase_move(phase, target)


def test_slot_table_lists_every_source() -> None:
    sources = {state for state, _ in SLOT_TRANSITIONS}

    assert sources == set(SlotState) - {SlotState.GONE}


def test_slot_table_reaches_gone() -> None:
    targets = {target for targets in SLOT_TRANSITIONS.values() for target in targets}

    assert SlotState.GONE in targets


def test_phase_table_lists_every_phase() -> None:
    phases = set(PHASE_TRANSITIONS)

    assert phases == set(ManagerPhase)
    assert PHASE_TRANSITIONS[ManagerPhase.DONE] == frozenset()


def test_invalid_transition_is_assertion_error() -> None:
    error = InvalidTransitionError("move")

    assert isinstance(error, AssertionError)


def test_slot_table_matches_docs() -> None:
    path = _repository_root() / "docs" / "lifecycle.md"

    text = path.read_text(encoding="utf-8")

    documented = text.partition(TABLE_START)[2].partition(TABLE_END)[0]
    assert text.count(TABLE_START) == 1
    assert text.count(TABLE_END) == 1
    assert documented == render_slot_table()
