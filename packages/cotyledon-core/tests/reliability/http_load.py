"""A bounded HTTP load generator for the HTTP service under test.

A fixed number of client threads send ``GET /?delay_ms=N`` requests, one
connection per request, to one port on 127.0.0.1 and nowhere else. Each
client waits for its response before it sends the next request, and starts
at most one request per ``min_interval``, so the rate is bounded. The
generator stops issuing requests after ``max_requests`` in all. Every socket
operation has a timeout. Each request counts in the phase that was current
when it started. A success is a 200 response with a JSON body that names the
worker that served it, and anything else is a failure, kept with its reason.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from types import TracebackType
from typing import Final
from typing import final

import attrs

HOST: Final = "127.0.0.1"


class BadResponseError(Exception):
    """The server responded, but not with status 200 and a JSON body that
    names a worker."""


@attrs.define
class PhaseFigures:
    """Counts of the requests that started during one phase of the load."""

    name: str
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    reasons: Counter[str] = attrs.Factory(Counter)
    """The number of failures by reason (exception type and message)."""
    pids: set[int] = attrs.Factory(set)
    """The workers that served the successful requests."""
    labels: set[str] = attrs.Factory(set)
    """The configuration labels that the successful responses carried."""
    max_latency: float = 0.0
    """The maximum latency of a request, success or failure, in seconds."""

    @property
    def in_flight(self) -> int:
        return self.started - self.succeeded - self.failed

    def summary(self) -> str:
        reasons = ", ".join(f"{count} x {reason}" for reason, count in self.reasons.most_common())
        return (
            f"{self.name}: {self.started} requests, {self.succeeded} succeeded, "
            f"{self.failed} failed, {len(self.pids)} workers served, "
            f"max latency {self.max_latency * 1000:.0f} ms"
            + (f" (failures: {reasons})" if reasons else "")
        )


@final
class LoadGenerator:
    """Send requests to ``http://127.0.0.1:{port}/`` from ``clients`` threads.

    Use it as a context manager: leaving the block stops the clients and
    waits for them, so that no request outlives the server under test.
    """

    def __init__(
        self,
        port: int,
        *,
        clients: int,
        max_requests: int,
        min_interval: float,
        timeout: float,
        delay_ms: int,
        first_phase: str = "start",
    ) -> None:
        if not 0 < port < 65536:
            raise ValueError(f"invalid port {port}: expected 1 to 65535")
        if clients < 1:
            raise ValueError(f"invalid clients {clients}: expected 1 or more")
        if timeout <= 0:
            raise ValueError(f"invalid timeout {timeout}: expected a positive number of seconds")
        self.port = port
        self.clients = clients
        self.max_requests = max_requests
        self.min_interval = min_interval
        self.timeout = timeout
        self.delay_ms = delay_ms
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._issued = 0
        self._phase = PhaseFigures(first_phase)
        self.phases: list[PhaseFigures] = [self._phase]
        self._threads = [
            threading.Thread(target=self._client, name=f"http-client-{n}", daemon=True)
            for n in range(clients)
        ]

    def __repr__(self) -> str:
        return (
            f"<LoadGenerator {HOST}:{self.port} clients={self.clients} "
            f"issued={self._issued}/{self.max_requests} phase={self._phase.name!r}>"
        )

    def __enter__(self) -> LoadGenerator:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def exhausted(self) -> bool:
        """True once ``max_requests`` requests have been issued."""
        with self._lock:
            return self._issued >= self.max_requests

    def begin_phase(self, name: str) -> PhaseFigures:
        """Count the requests that start from now on in a new phase; return it."""
        with self._lock:
            self._phase = PhaseFigures(name)
            self.phases.append(self._phase)
            return self._phase

    def snapshot(self, phase: PhaseFigures) -> PhaseFigures:
        """Return a copy of ``phase`` that the clients no longer change."""
        with self._lock:
            return attrs.evolve(
                phase,
                reasons=Counter(phase.reasons),
                pids=set(phase.pids),
                labels=set(phase.labels),
            )

    def stop(self) -> None:
        """Stop issuing requests and wait for the clients to finish theirs.

        A request in flight ends within a few timeouts (connect, send,
        receive). Raises RuntimeError if a client is still running after
        that.
        """
        self._stop.set()
        deadline = time.monotonic() + 4 * self.timeout
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        running = [thread.name for thread in self._threads if thread.is_alive()]
        if running:
            raise RuntimeError(f"load clients still running after {4 * self.timeout} s: {running}")

    def _client(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if self._issued >= self.max_requests:
                    return
                self._issued += 1
                phase = self._phase
                phase.started += 1
            started = time.monotonic()
            try:
                pid, label = self._request()
            except (OSError, http.client.HTTPException, BadResponseError) as exc:
                self._record(phase, started, failure=f"{type(exc).__name__}: {exc}")
            else:
                self._record(phase, started, pid=pid, label=label)
            self._stop.wait(max(0.0, started + self.min_interval - time.monotonic()))

    def _request(self) -> tuple[int, str]:
        """Send one request on a new connection and return the pid and the
        label of the worker that served it."""
        connection = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        try:
            connection.request("GET", f"/?delay_ms={self.delay_ms}")
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise BadResponseError(f"status {response.status} {response.reason}")
        try:
            data = json.loads(body)
            return int(data["pid"]), str(data["label"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BadResponseError(
                f"invalid body {body[:200]!r}: expected JSON with a pid and a label"
            ) from exc

    def _record(
        self,
        phase: PhaseFigures,
        started: float,
        *,
        pid: int | None = None,
        label: str | None = None,
        failure: str | None = None,
    ) -> None:
        latency = time.monotonic() - started
        with self._lock:
            phase.max_latency = max(phase.max_latency, latency)
            if failure is not None:
                phase.failed += 1
                phase.reasons[failure] += 1
                return
            phase.succeeded += 1
            if pid is not None:
                phase.pids.add(pid)
            if label is not None:
                phase.labels.add(label)
