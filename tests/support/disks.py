"""A small disk of its own for a test: a tmpfs mounted on a folder of the test's, so a store or
data folder can run out of room for real (mounting one needs root, which CI has)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def small_disk(folder: Path, size: str, request: pytest.FixtureRequest) -> Path:
    """`folder` made the mount point of a `size` tmpfs, unmounted when the test ends."""
    if os.geteuid() != 0 and not os.environ.get("CI"):
        pytest.skip("a small tmpfs needs root to mount (CI runs as root and runs this)")
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    request.addfinalizer(lambda: subprocess.run(["umount", str(folder)], check=True))
    return folder


def fill_up_to(disk: Path, room: int) -> None:
    """Write a ballast file on `disk` so that exactly `room` bytes stay free."""
    stats = os.statvfs(disk)
    with open(disk / "ballast", "wb") as handle:
        handle.write(b"\0" * (stats.f_bavail * stats.f_frsize - room))
    stats = os.statvfs(disk)
    assert stats.f_bavail * stats.f_frsize == room
