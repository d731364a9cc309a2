"""The scheduler: which worker slots a service is missing or has too many of.

Both functions are deterministic: slots are started lowest worker id first
and retired highest worker id first, so that the ids in use are always
0 to ``workers - 1`` once the manager has settled.
"""

from __future__ import annotations

from collections.abc import Collection

from cotyledon.core._ids import Slot
from cotyledon.core._ids import WorkerId
from cotyledon.core._spec import ServiceSpec


def missing_slots(spec: ServiceSpec, present: Collection[WorkerId]) -> list[Slot]:
    """Return the slots of the service that have no record, lowest id first."""
    return [
        Slot(spec.service_id, WorkerId(worker_id))
        for worker_id in range(spec.workers)
        if worker_id not in present
    ]


def surplus_slots(spec: ServiceSpec, present: Collection[WorkerId]) -> list[Slot]:
    """Return the slots beyond the service's worker count, highest id first."""
    return [
        Slot(spec.service_id, worker_id)
        for worker_id in sorted(present, reverse=True)
        if worker_id >= spec.workers
    ]


def is_wanted(spec: ServiceSpec | None, slot: Slot) -> bool:
    """Tell whether the service still wants a worker in this slot."""
    return spec is not None and slot.worker_id < spec.workers
