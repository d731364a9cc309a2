"""The hooks that users register, and how they run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import attrs

from cotyledon.core import ServiceId
from cotyledon.core import WorkerId

LOG = logging.getLogger(__name__)

OnTerminateHook = Callable[[], None]
OnReloadHook = Callable[[], None]
OnNewWorkerHook = Callable[[ServiceId, WorkerId, Any], None]
OnDeadWorkerHook = Callable[[ServiceId, WorkerId, int], None]


@attrs.define
class Hooks:
    """The hooks of a manager, each list in the order of registration."""

    on_terminate: list[OnTerminateHook] = attrs.Factory(list)
    on_reload: list[OnReloadHook] = attrs.Factory(list)
    on_new_worker: list[OnNewWorkerHook] = attrs.Factory(list)
    on_dead_worker: list[OnDeadWorkerHook] = attrs.Factory(list)


def run_hooks(kind: str, hooks: list[Callable[..., None]], *args: object) -> None:
    """Call each hook in order; log and swallow what one raises, then go on."""
    for hook in hooks:
        try:
            hook(*args)
        except Exception:
            LOG.exception("The %s hook %r raised; the next hooks still run", kind, hook)
