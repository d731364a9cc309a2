"""``python -m jobqueue --spool DIR [--jobs N]``: run the job processor."""

from .app import main

main()
