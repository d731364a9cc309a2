"""``python -m httpservice --port N [--workers N]``: run the HTTP service."""

from .app import main

main()
