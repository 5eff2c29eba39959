"""CI guard: no large file in git, so that no run state (checkpoints, replays, packed runs) is ever committed.

    python scripts/check_large_files.py        # exits 1 and names each git-tracked file over 1 MB

Training state lives in ``runs/`` (ignored) and stays on the machine that trains it: each run must finish there, and
only its curves and tables go into ``benchmarks/results/``. Every large file that is committed stays in the history
for good, so CI fails on one (``.ci/run`` calls this before the tests). A deliberate artifact (e.g. a reference data
file) is allowed by adding its path, relative to the repository root, to ``ALLOWED``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: Bytes above which a tracked file fails the check (1 MB).
LIMIT = 1_000_000
#: Deliberately tracked large files (paths relative to the repository root, as ``git ls-files`` prints them).
ALLOWED: frozenset[str] = frozenset()


def large_files(root: Path, limit: int = LIMIT, allowed: frozenset[str] | set[str] = ALLOWED) -> list[tuple[str, int]]:
    """``(path, bytes)`` of each file tracked by git in ``root`` (``git ls-files``: committed or added) whose copy in the
    working tree is larger than ``limit`` bytes, except the paths in ``allowed``; sorted by path. Tracked files missing
    from the working tree and symlinks are skipped."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True).stdout
    found = []
    for name in sorted(set(listed.decode("utf-8", "surrogateescape").split("\0")) - {""}):
        path = root / name
        if name in allowed or path.is_symlink() or not path.is_file():
            continue
        size = path.stat().st_size
        if size > limit:
            found.append((name, size))
    return found


def main() -> int:
    """Check the repository this script belongs to; print what to do and return 1 if a large file is tracked."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():  # an exported tree (no history to protect): say so rather than fail
        print(f"{root} is not a git checkout; the large-file check was skipped", file=sys.stderr)
        return 0
    try:
        found = large_files(root)
    except (OSError, subprocess.CalledProcessError) as error:  # no git, or not a git checkout: the check cannot pass
        print(f"cannot list the files tracked by git in {root}: {error}", file=sys.stderr)
        return 1
    if not found:
        return 0
    print(f"{len(found)} git-tracked file(s) larger than {LIMIT:,} bytes:", file=sys.stderr)
    for name, size in found:
        print(f"  {name} ({size / 1e6:.1f} MB)", file=sys.stderr)
    print(
        "Keep run state (checkpoints, replays, packed runs, logs) out of git: it belongs in runs/ on the machine "
        "that trains it (git rm --cached the file and ignore it in .gitignore). If a file is a deliberate "
        f"artifact, add its path to ALLOWED in {Path(__file__).relative_to(root)}.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
