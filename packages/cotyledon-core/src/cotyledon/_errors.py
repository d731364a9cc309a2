"""The exceptions that cotyledon raises on bad input."""

from __future__ import annotations


class CotyledonError(Exception):
    """Base class of the errors raised by cotyledon."""


class InvalidArgumentError(CotyledonError, ValueError):
    """An argument has the right type but a value that is not allowed."""


class InvalidTypeError(CotyledonError, TypeError, ValueError):
    """An argument does not have the type that is required.

    It is a ``ValueError`` too: cotyledon 2.x raised ``ValueError`` for a
    ``workers`` that is not an int, and programs written for it catch that.
    """


class UnpicklableError(InvalidTypeError):
    """Something a worker needs cannot be pickled, and the start method
    (spawn or forkserver) has to pickle it to start the worker."""
