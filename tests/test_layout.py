"""The package layering of DESIGN.md: serving <- tuner <- pipelines <- hyperflow."""

from __future__ import annotations

import subprocess
import sys

from tests.util import REPO


def test_serving_does_not_import_tuner_or_pipelines() -> None:
    code = (
        "import sys, importlib, pkgutil, serving\n"
        "for m in pkgutil.walk_packages(serving.__path__, 'serving.'):\n"
        "    try: importlib.import_module(m.name)\n"
        "    except ImportError: pass\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in ('tuner', 'pipelines', 'hyperflow')]\n"
        "print(','.join(bad)); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, f"serving imported: {proc.stdout} {proc.stderr[-2000:]}"


def test_cli_help_lists_commands() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hyperflow", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    for word in ("experiment", "serve", "suggestion"):
        assert word in proc.stdout
