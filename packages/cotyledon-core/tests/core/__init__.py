"""Tests of the pure core.

This file makes mypy name these modules ``core.*``, so this folder's
``conftest`` does not clash with the ``conftest`` of another test folder.
"""
