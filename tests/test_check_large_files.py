"""The CI guard against large files in git (``scripts/check_large_files.py``), on a throwaway repository."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_large_files.py"


@pytest.fixture
def checker(monkeypatch):
    """``scripts/check_large_files.py`` imported as a module (for the test's duration only)."""
    spec = importlib.util.spec_from_file_location("check_large_files_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_only_tracked_files_over_the_limit_are_reported_unless_allowed(checker, tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "small.txt").write_text("small\n")
    git(tmp_path, "add", "small.txt")
    git(tmp_path, "commit", "-q", "-m", "small")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "checkpoint.bin").write_bytes(b"\0" * 1_500_000)
    git(tmp_path, "add", "runs/checkpoint.bin")  # added, not yet committed: still caught
    (tmp_path / "untracked.bin").write_bytes(b"\0" * 1_500_000)  # not in git: not the guard's business

    assert checker.LIMIT == 1_000_000 and checker.ALLOWED == frozenset()
    assert checker.large_files(tmp_path) == [("runs/checkpoint.bin", 1_500_000)]
    assert checker.large_files(tmp_path, allowed={"runs/checkpoint.bin"}) == []


def test_main_fails_naming_the_files_and_what_to_do(checker, monkeypatch, capsys):
    monkeypatch.setattr(checker, "large_files", lambda root: [("runs/checkpoint.bin", 1_500_000)])
    assert checker.main() == 1
    err = capsys.readouterr().err
    assert "runs/checkpoint.bin (1.5 MB)" in err and "out of git" in err and "ALLOWED" in err
    monkeypatch.setattr(checker, "large_files", lambda root: [])
    assert checker.main() == 0
