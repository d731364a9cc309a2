"""The ``cotyledon.listeners`` entry point of the testkit.

A manager started by a ``ManagerProcess`` reports its lifecycle with no
code change; outside a harness (no channel in the environment) the entry
point creates no listener. Every master where the testkit is installed
loads this module, so it imports the standard library alone, and the
listener and its event channel only under a harness.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cotyledon_testkit._channel_env import CHANNEL_ENV

if TYPE_CHECKING:
    from cotyledon_testkit._harness_listener import HarnessListener


def create_listener() -> HarnessListener | None:
    """Return a listener when the process runs under a harness, else None."""
    if not os.environ.get(CHANNEL_ENV):
        return None
    from cotyledon_testkit._harness_listener import HarnessListener

    return HarnessListener()
