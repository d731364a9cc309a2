"""``python -m cotyledon status|ready|live SOCKET``: ask a running manager.

The manager must have been created with ``control_socket=SOCKET``.
``status`` prints the status snapshot as JSON. ``ready`` and ``live``
print the response and exit 0 when the manager is ready (or live), 1
otherwise, as container probes and shell scripts expect. A failure to get
a response exits 1 with a message on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from cotyledon.runtime import query_control_socket


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cotyledon", description="Ask a running cotyledon manager."
    )
    parser.add_argument("request", choices=["status", "ready", "live"])
    parser.add_argument("socket", help="the manager's control_socket path")
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for the response (5)"
    )
    args = parser.parse_args(argv)
    try:
        response = query_control_socket(args.socket, args.request, args.timeout)
    except (OSError, ValueError, TypeError) as exc:
        print(f"cotyledon: no response from {args.socket}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(response, indent=2 if args.request == "status" else None))
    if args.request == "status":
        return 0
    return 0 if response.get(args.request) is True else 1


if __name__ == "__main__":
    sys.exit(main())
