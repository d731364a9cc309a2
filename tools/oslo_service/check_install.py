"""Check that the `cotyledon` package of this environment is this project's.

Run in the environment that `make oslo-service` builds, after oslo.service
was installed next to this project: oslo.service requires the distribution
`cotyledon>=2.2.0`, and cotyledon 2.x from PyPI would put its own files into
the same `cotyledon` package folder as cotyledon-core. Exits non-zero, with
the reasons, if any 2.x file or distribution is there.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import sys
from pathlib import Path

import cotyledon


def problems() -> list[str]:
    found = []
    try:
        version = importlib.metadata.version("cotyledon")
    except importlib.metadata.PackageNotFoundError:
        found.append("the cotyledon distribution is not installed")
    else:
        if not version.startswith("3."):
            found.append(f"the cotyledon distribution is {version}, not this project's 3.x")
    core = importlib.metadata.distribution("cotyledon-core")
    core_files = {Path(str(core.locate_file(f))).resolve() for f in core.files or []}
    package = Path(cotyledon.__file__).resolve().parent
    if package / "__init__.py" not in core_files:
        found.append(f"{package / '__init__.py'} was not installed by cotyledon-core")
    found.extend(
        f"{path} was not installed by cotyledon-core"
        for path in sorted(package.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path not in core_files
    )
    found.extend(
        f"{core.locate_file(f)} differs from the file that cotyledon-core installed"
        for f in core.files or []
        if f.parts[:1] == ("cotyledon",) and f.hash is not None and not _matches(core, f)
    )
    owners = sorted(
        str(dist.metadata["Name"])
        for dist in importlib.metadata.distributions()
        if any(f.parts[:1] == ("cotyledon",) for f in dist.files or [])
    )
    if owners != ["cotyledon-core"]:
        found.append(f"the cotyledon package has files from {owners}, not cotyledon-core alone")
    return found


def _matches(dist: importlib.metadata.Distribution, file: importlib.metadata.PackagePath) -> bool:
    """Tell whether ``file`` still has the hash in ``dist``'s RECORD."""
    assert file.hash is not None
    digest = hashlib.new(file.hash.mode, Path(str(dist.locate_file(file))).read_bytes()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == file.hash.value


def main() -> int:
    found = problems()
    for problem in found:
        print(f"check_install: {problem}", file=sys.stderr)
    if found:
        return 1
    print(
        f"check_install: cotyledon {importlib.metadata.version('cotyledon')} installs "
        f"cotyledon-core {importlib.metadata.version('cotyledon-core')}; "
        f"`import cotyledon` loads {cotyledon.__file__}; no cotyledon 2.x file"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
