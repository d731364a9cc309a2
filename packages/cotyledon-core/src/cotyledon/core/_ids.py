"""Identifiers of services, workers and worker slots."""

from __future__ import annotations

import uuid
from typing import NewType

from cotyledon.core._record import record

ServiceId = NewType("ServiceId", uuid.UUID)
"""The identifier that ``ServiceManager.add`` returns for a service."""

WorkerId = NewType("WorkerId", int)
"""The index of a worker in its service, from 0 to ``workers - 1``.

A worker that dies is replaced by one with the same id, so an id can be
used to share work out between the workers of a service.
"""


@record(order=True, cache_hash=True)
class Slot:
    """The place of one worker: a service and a worker id.

    A slot holds at most one live process at a time; its processes come
    and go as workers die and are respawned.
    """

    service_id: ServiceId
    worker_id: WorkerId

    def __str__(self) -> str:
        return f"{self.service_id}/{self.worker_id}"
