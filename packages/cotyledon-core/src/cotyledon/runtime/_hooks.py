"""The hooks that users register, and how they run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from cotyledon.core import ServiceId
from cotyledon.core import WorkerId
from cotyledon.core import field
from cotyledon.core import record

LOG = logging.getLogger(__name__)

OnTerminateHook = Callable[[], None]
OnReloadHook = Callable[[], None]
OnNewWorkerHook = Callable[[ServiceId, WorkerId, Any], None]
OnDeadWorkerHook = Callable[[ServiceId, WorkerId, int], None]


class CancelReload(Exception):
    """Raised by an ``on_reload`` hook to cancel the reload.

    The remaining hooks still run, but no worker is told to reload or
    restart: use it when the new configuration cannot be loaded, so that
    the workers keep running with the old one.
    """


@record(frozen=False)
class Hooks:
    """The hooks of a manager, each list in the order of registration."""

    on_terminate: list[OnTerminateHook] = field(factory=list)
    on_reload: list[OnReloadHook] = field(factory=list)
    on_new_worker: list[OnNewWorkerHook] = field(factory=list)
    on_dead_worker: list[OnDeadWorkerHook] = field(factory=list)


def run_hooks(kind: str, hooks: list[Callable[..., None]], *args: object) -> bool:
    """Call each hook in order; log and swallow what one raises, then go on.

    Return whether a hook raised ``CancelReload``.
    """
    cancelled = False
    for hook in hooks:
        try:
            hook(*args)
        except CancelReload as exc:
            LOG.warning("The %s hook %r cancelled the reload: %s", kind, hook, exc)
            cancelled = True
        except BaseException:
            # This catches sys.exit() in a hook too. In the master, it would
            # otherwise end the loop with no log line and no stop of the workers.
            LOG.exception("The %s hook %r raised; the next hooks still run", kind, hook)
    return cancelled
