"""The environment variable that points a process under test to its
harness's event channel.

It has a module of its own because the listener's entry point reads it in
every master where the testkit is installed, before it decides whether to
import the channel, which brings ``attrs`` and ``json``.
"""

from __future__ import annotations

from typing import Final

CHANNEL_ENV: Final = "COTYLEDON_TESTKIT_CHANNEL"
"""The environment variable that contains the channel's socket path."""
