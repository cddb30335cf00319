"""Tests that need a program from Debian's packages (nginx, Chromium).

On a developer's machine without it they are skipped with the command that installs it; in
CI (`CI` set, as `.ci/run` runs) they always run, so a missing package fails loudly there
instead of passing unseen.
"""

from __future__ import annotations

import os
import shutil

import pytest


def program(name: str, *candidates: str) -> str | None:
    """Where the program is, or None."""
    return shutil.which(name) or next((path for path in candidates if os.path.exists(path)), None)


def needs_package(found: str | None, package: str) -> pytest.MarkDecorator:
    missing = found is None
    return pytest.mark.skipif(
        missing and not os.environ.get("CI"),
        reason=f"needs Debian's {package} (apt-get install {package}); CI installs it and runs this",
    )
