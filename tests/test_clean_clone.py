"""A user's clone has no ``../shared`` beside it: the tests that read it must skip there."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.util import REPO


def _repository_files() -> list[str]:
    """The files a clone of this working tree would have (tracked, plus new unignored ones)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git working tree: cannot tell which files a clone would hold")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


def test_tests_reading_shared_examples_skip_in_a_clone_without_them(tmp_path: Path) -> None:
    clone = tmp_path / "clone" / "hyperflow"  # no "shared" folder beside it
    files = _repository_files()
    for name in files:
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    readers = sorted(
        name
        for name in files
        if name.startswith("tests/")
        and name.endswith(".py")
        and name not in ("tests/util.py", "tests/test_clean_clone.py")
        and "SHARED" in (REPO / name).read_text()
    )
    assert readers, "no test reads ../shared any more: drop this test"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *readers],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "is absent" in output, output[-4000:]
