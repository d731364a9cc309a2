"""Entry point of a manager started by ``ManagerProcess``.

``python -m cotyledon_testkit._launch module:function`` sets up logging to
stderr, imports the module and calls the function, which builds a manager
and runs it.
"""

from __future__ import annotations

import importlib
import logging
import sys


def main() -> None:
    logging.basicConfig(
        level=logging.DEBUG,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    module_name, _, function_name = sys.argv[1].partition(":")
    module = importlib.import_module(module_name)
    getattr(module, function_name)()


if __name__ == "__main__":
    main()
