"""Where the repository is, and where the tests keep what outlives a run."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Virtualenvs shared by every run on this machine (git-ignored).
CACHE = ROOT / ".cache"
# What a failing test leaves behind for a person to look at (git-ignored).
ARTIFACTS = ROOT / "artifacts"
