"""An importer that runs once: it imports the CSV files of its inbox, then exits.

Its exit status 0 (done) and 3 (no inbox: a configuration error, which no
restart can fix) finish the service, and any other failure restarts it.
Once the importer has finished, no service is left running, so the
manager exits 0.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cotyledon

INBOX = Path(os.environ.get("IMPORTER_INBOX", "inbox"))
CONFIGURATION_ERROR = 3


class Importer(cotyledon.Service):
    name = "importer"

    def run(self) -> None:
        if not INBOX.is_dir():
            print(f"no inbox at {INBOX}", file=sys.stderr)
            sys.exit(CONFIGURATION_ERROR)
        for path in sorted(INBOX.glob("*.csv")):
            rows = path.read_text().splitlines()
            print(f"imported {path.name}: {len(rows)} rows")
            path.unlink()
        # A worker whose run() returns waits for a signal, so a job that
        # is done exits, with status 0.
        sys.exit(0)


def main() -> None:
    manager = cotyledon.ServiceManager()
    manager.add(Importer, restart="on-failure", restart_prevent_exit_status=(CONFIGURATION_ERROR,))
    manager.run()


if __name__ == "__main__":
    main()
