"""Debian's Chromium as the UI tests, benchmarks/ui.py and scripts/screenshots.py launch it
(Playwright cannot download its own browser here; ``make test`` installs ``chromium``)."""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
