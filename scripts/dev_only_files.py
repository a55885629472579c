"""What of .venv the jobs never import: scripts/setup.sh leaves it out of the packed YARN env.

Prints tar exclude patterns (one per line, relative to the venv as ./...): the top-level entries
of site-packages and the scripts that belong only to distributions outside the runtime closure
of the project (its dependencies, without the `dev` extra: pytest, mypy, ruff, deltalake,
statsmodels, the notebook kernel and what only they pull in). An entry shared with a runtime
distribution stays.

    .venv/bin/python scripts/dev_only_files.py .venv > build/pyenv.exclude
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "precision-marketing"


def runtime_closure(name: str) -> set[str]:
    """The project and every distribution its (non-dev) requirements reach, extras followed."""
    seen: set[str] = set()
    pending: list[tuple[str, frozenset[str]]] = [(name, frozenset())]
    while pending:
        dist_name, extras = pending.pop()
        key = canonicalize_name(dist_name)
        if key in seen:
            continue
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue  # a marker-excluded or optional requirement that is not installed
        seen.add(key)
        for line in dist.requires or []:
            req = Requirement(line)
            wanted = req.marker is None or any(
                req.marker.evaluate({"extra": extra}) for extra in {"", *extras}
            )
            if wanted:
                pending.append((req.name, frozenset(req.extras)))
    return seen


def entries(venv: Path, dist: metadata.Distribution) -> set[str]:
    """The dist's files as ./ paths under the venv, cut at site-packages' top level."""
    found = set()
    for file in dist.files or []:
        path = Path(dist.locate_file(file)).resolve()
        if not path.is_relative_to(venv):
            continue
        parts = path.relative_to(venv).parts
        cut = parts.index("site-packages") + 2 if "site-packages" in parts else len(parts)
        found.add("./" + "/".join(parts[:cut]))
    return found


def main() -> None:
    venv = Path(sys.argv[1]).resolve()
    runtime = runtime_closure(PROJECT)
    kept: set[str] = set()
    dropped: set[str] = set()
    for dist in metadata.distributions():
        owned = entries(venv, dist)
        (kept if canonicalize_name(dist.metadata["Name"]) in runtime else dropped).update(owned)
    print("\n".join(sorted(dropped - kept)))


if __name__ == "__main__":
    main()
