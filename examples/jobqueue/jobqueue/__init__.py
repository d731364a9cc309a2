"""A job processor built on cotyledon: supervised workers share a spool.

See ``app.main`` for the command line, and ``spool`` for the directory
layout that gets each job done exactly once even when a worker is killed
(a crash of the whole machine is out of scope, because nothing is synced
to disk).
"""
