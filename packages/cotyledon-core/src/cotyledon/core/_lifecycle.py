"""The lifecycles of a worker slot and of the manager, as tables.

A slot moves between these states:

- BACKING_OFF: no process; one is spawned when the slot's respawn time
  comes (at once for a new slot).
- SPAWNING: a spawn was requested and its result is awaited.
- RUNNING: a live process, not asked to stop.
- STOPPING: asked to stop; killed if still alive at its deadline.
- KILLING: sent SIGKILL; waiting to reap it.
- FINISHED: no process, and none to come: its worker ended for good
  (restart policy, an exit status that prevents restarts, or a service
  given up). The record stays, for the status, until the manager stops.
- GONE: the slot's record is dropped (the manager stops, or the service
  has fewer workers now).

Rules: a slot has at most one process, so it spawns only from BACKING_OFF,
and it leaves every state that has a process only through an exit, or
through KILLING after a deadline. The one exception is a rolling reload. A
RUNNING slot of a service with ``ReloadPolicy.ROLLING`` may get one
replacement process, with a record of its own that moves through SPAWNING,
RUNNING, STOPPING and KILLING to GONE. At most one slot per service has a
replacement at a time. When the slot's own process exits, the replacement
takes its place (HANDED_OVER). The supervisor moves a slot only along
the edges below, and checks each move against this table.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final


class SlotState(enum.Enum):
    """The state of a worker slot."""

    BACKING_OFF = "backing-off"
    SPAWNING = "spawning"
    RUNNING = "running"
    STOPPING = "stopping"
    KILLING = "killing"
    FINISHED = "finished"
    GONE = "gone"


class SlotTrigger(enum.Enum):
    """What moves a slot from one state to the next."""

    RESPAWN_DUE = "respawn time reached"
    SPAWNED = "process started"
    SPAWN_FAILED = "process failed to start"
    STOP = "asked to stop"
    DEADLINE = "stop deadline passed"
    EXITED = "process exited"
    UNWANTED = "slot no longer wanted"
    HANDED_OVER = "process exited, its replacement takes over"


_S = SlotState
_T = SlotTrigger

SLOT_TRANSITIONS: Final[Mapping[tuple[SlotState, SlotTrigger], frozenset[SlotState]]] = {
    (_S.BACKING_OFF, _T.RESPAWN_DUE): frozenset({_S.SPAWNING}),
    (_S.BACKING_OFF, _T.UNWANTED): frozenset({_S.FINISHED, _S.GONE}),
    (_S.SPAWNING, _T.SPAWNED): frozenset({_S.RUNNING}),
    (_S.SPAWNING, _T.SPAWN_FAILED): frozenset({_S.BACKING_OFF, _S.FINISHED, _S.GONE}),
    (_S.RUNNING, _T.STOP): frozenset({_S.STOPPING}),
    (_S.RUNNING, _T.EXITED): frozenset({_S.BACKING_OFF, _S.FINISHED, _S.GONE}),
    # A graceful stop turned into a fast one moves the deadline closer.
    (_S.STOPPING, _T.STOP): frozenset({_S.STOPPING}),
    (_S.STOPPING, _T.DEADLINE): frozenset({_S.KILLING}),
    (_S.STOPPING, _T.EXITED): frozenset({_S.BACKING_OFF, _S.FINISHED, _S.GONE}),
    (_S.KILLING, _T.EXITED): frozenset({_S.BACKING_OFF, _S.FINISHED, _S.GONE}),
    (_S.FINISHED, _T.UNWANTED): frozenset({_S.GONE}),
    # A rolling reload: the slot's replacement process (started or still
    # spawning) becomes the slot's process when the old one exits.
    (_S.RUNNING, _T.HANDED_OVER): frozenset({_S.SPAWNING, _S.RUNNING}),
    (_S.STOPPING, _T.HANDED_OVER): frozenset({_S.SPAWNING, _S.RUNNING}),
    (_S.KILLING, _T.HANDED_OVER): frozenset({_S.SPAWNING, _S.RUNNING}),
}


class ManagerPhase(enum.Enum):
    """The state of the manager as a whole."""

    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    INTERRUPTING = "interrupting"
    DONE = "done"


_P = ManagerPhase

PHASE_TRANSITIONS: Final[Mapping[ManagerPhase, frozenset[ManagerPhase]]] = {
    _P.NEW: frozenset({_P.RUNNING, _P.STOPPING, _P.INTERRUPTING}),
    _P.RUNNING: frozenset({_P.STOPPING, _P.INTERRUPTING}),
    _P.STOPPING: frozenset({_P.INTERRUPTING, _P.DONE}),
    _P.INTERRUPTING: frozenset({_P.DONE}),
    _P.DONE: frozenset(),
}


class InvalidTransitionError(AssertionError):
    """The supervisor tried a move that its tables do not allow (a bug)."""


def check_slot_move(state: SlotState, trigger: SlotTrigger, target: SlotState) -> None:
    """Raise InvalidTransitionError unless the table allows this move."""
    if target not in SLOT_TRANSITIONS.get((state, trigger), frozenset()):
        raise InvalidTransitionError(
            f"slot move {state.name} --{trigger.name}--> {target.name} is not in SLOT_TRANSITIONS"
        )


def check_phase_move(phase: ManagerPhase, target: ManagerPhase) -> None:
    """Raise InvalidTransitionError unless the table allows this move."""
    if target not in PHASE_TRANSITIONS[phase]:
        raise InvalidTransitionError(
            f"manager move {phase.name} -> {target.name} is not in PHASE_TRANSITIONS"
        )


def render_slot_table() -> str:
    """Render the slot transitions as a Markdown table, for the docs."""
    lines = ["| from | on | to |", "|---|---|---|"]
    for (state, trigger), targets in SLOT_TRANSITIONS.items():
        names = ", ".join(sorted(target.value for target in targets))
        lines.append(f"| {state.value} | {trigger.value} | {names} |")
    return "\n".join(lines) + "\n"
