"""Requests a worker makes of itself."""

from __future__ import annotations

import os
import signal


def request_own_termination() -> None:
    """Make the calling worker stop gracefully, as on SIGTERM from its master."""
    os.kill(os.getpid(), signal.SIGTERM)
