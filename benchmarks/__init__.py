"""Benchmarks of cotyledon against cotyledon 2.2.0 and the floors of fork and spawn.

``python -m benchmarks`` runs them (``make bench``); ``--smoke`` runs a
small version in a few seconds. See ``BENCHMARKS.md`` at the root of the
repository for the method and the latest results.
"""
