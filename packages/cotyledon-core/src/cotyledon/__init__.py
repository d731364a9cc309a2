"""Cotyledon: long-running services made of supervised worker processes.

The public API is that of cotyledon 2.x: subclass ``Service``, add it to a
``ServiceManager`` with a number of workers, and call ``run()``.
"""

from cotyledon._errors import CotyledonError
from cotyledon._errors import InvalidArgumentError
from cotyledon._errors import InvalidTypeError
from cotyledon._errors import UnpicklableError
from cotyledon._manager import ServiceManager
from cotyledon._service import Service

__all__ = [
    "CotyledonError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "Service",
    "ServiceManager",
    "UnpicklableError",
]
