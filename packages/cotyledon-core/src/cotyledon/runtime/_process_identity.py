"""The process objects that ``multiprocessing`` reports in a forked worker.

A child that ``multiprocessing`` starts finds itself in
``multiprocessing.current_process()`` and its parent in
``multiprocessing.parent_process()``. A worker that the master forks with
``os.fork()`` would otherwise find the master's own process object there,
named ``MainProcess``, and no parent. Code that checks whether it runs in
the main process would conclude that it does, and ``%(processName)s`` in
a worker's log lines would name the master.

The objects are built once in the master, so that a new worker only puts
them in place: building them in each worker would run code that copies
pages of the master's memory.
"""

from __future__ import annotations

import itertools
import multiprocessing.process
import os
from typing import Any
from typing import final


@final
class ForkedIdentity:
    """The process objects that the forked workers of one master take on.

    NOTE: these are private names of multiprocessing (3.10 to 3.13). When
    one is missing, the workers keep the master's objects, as with a plain
    ``os.fork()``.
    """

    __slots__ = ("_parent", "_worker", "master_pidfd")

    def __init__(self) -> None:
        self._worker: Any = None
        self._parent: Any = None
        self.master_pidfd: int | None = None
        """A pidfd of the master, or None: the sentinel of ``parent_process()``
        in each worker, which watches its master with it too."""
        module: Any = multiprocessing.process
        if not hasattr(module, "_current_process"):
            return
        master = multiprocessing.current_process()

        # The state of BaseProcess.__init__ without its side effects in the
        # master: it would take a number from the master's process counter
        # and register the object among the master's processes.
        worker: Any = module.BaseProcess.__new__(module.BaseProcess)
        worker._identity = ()
        worker._parent_pid = os.getpid()
        worker._parent_name = master.name
        worker._popen = None
        worker._closed = False
        worker._target = None
        worker._args = ()
        worker._kwargs = {}
        worker._name = master.name
        self._worker = worker

        # The master's pidfd is the sentinel of parent_process() in each
        # worker: it becomes readable when the master exits, as the pipe of
        # a multiprocessing parent does, and it is closed on exec. Without
        # one, is_alive() and join() could not work, and the workers have
        # no parent_process(), as after a plain os.fork().
        parent_class = getattr(module, "_ParentProcess", None)
        if parent_class is None or not hasattr(os, "pidfd_open"):
            return
        try:
            sentinel = os.pidfd_open(os.getpid())
        except OSError:
            return
        self._parent = parent_class(master.name, os.getpid(), sentinel)
        self.master_pidfd = sentinel

    def __repr__(self) -> str:
        return f"<ForkedIdentity ready={self._worker is not None}>"

    def adopt(self, name: str) -> None:
        """Make the calling forked worker ``multiprocessing``'s current process,
        named ``name``, with the master as its parent."""
        worker = self._worker
        if worker is None:
            return
        module: Any = multiprocessing.process
        # The master's settings (authkey, among others) go with it, as they
        # go to a multiprocessing child.
        worker._config = module._current_process._config
        worker._name = name
        module._current_process = worker
        if self._parent is not None:
            module._parent_process = self._parent
        module._process_counter = itertools.count(1)
