"""Starter files for `storyboard init`, copied from the packaged defaults."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

STARTER_FILES = {"storyboard.toml": "storyboard.toml", ".env.example": "env.example"}


def write_starter_files(directory: Path) -> tuple[list[Path], list[Path]]:
    """Write each starter file that does not exist yet; never overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    data = resources.files("storyboard_cli") / "data"
    written, kept = [], []
    for target_name, packaged in STARTER_FILES.items():
        target = directory / target_name
        if target.exists():
            kept.append(target)
            continue
        target.write_text((data / packaged).read_text(encoding="utf-8"), encoding="utf-8")
        written.append(target)
    return written, kept
