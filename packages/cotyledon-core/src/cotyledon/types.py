"""The identifier types of the public API."""

from cotyledon.core import ServiceId
from cotyledon.core import WorkerId

__all__ = ["ServiceId", "WorkerId"]
