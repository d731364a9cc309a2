"""An HTTP service on cotyledon: workers share one listening socket.

The master opens the socket before it starts any worker (``listener``).
Each forked worker serves HTTP/1.0 requests from it (``server``,
``service``). A reload replaces the workers one at a time, while the
socket's backlog keeps the connections that no worker has accepted yet
(``app``). See ``app.main`` for the command line.
"""
