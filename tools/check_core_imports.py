"""Check that cotyledon.core imports only modules known to do no I/O.

import-linter's contracts list what may not be imported; this check is the
allow-list that they cannot express: a new import in the core fails here
until someone decides that the module is pure.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Final

CORE: Final = Path(__file__).parent.parent / "packages/cotyledon-core/src/cotyledon/core"

PURE_MODULES: Final = frozenset(
    {
        "__future__",
        "abc",
        "collections",
        "enum",
        "functools",
        "heapq",
        "itertools",
        "math",
        "operator",
        "reprlib",
        "typing",
        "typing_extensions",
        "uuid",
    }
)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def main() -> int:
    errors = []
    for path in sorted(CORE.rglob("*.py")):
        for lineno, module in imported_modules(path):
            top = module.split(".")[0]
            if module.startswith("cotyledon.core") or top in PURE_MODULES:
                continue
            errors.append(
                f"{path}:{lineno}: the core imports {module!r}, which is not in "
                "the list of pure modules; move the code to cotyledon.runtime "
                "or add the module to PURE_MODULES in tools/check_core_imports.py"
            )
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
