"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the repository; skips the test where it is absent."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"{path} is absent (the shared data folder is only beside the repo in dev checkouts and CI)")
    return path
