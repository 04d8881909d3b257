"""Shared fixtures: the location of ../shared beside the repository and its worked protocol cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"
CASES = SHARED / "docs" / "protocol_cases"


def load_case_file(name: str) -> dict:
    """A worked-case JSON of ../shared/docs/protocol_cases, skipping the test when it is absent."""
    path = CASES / name
    if not path.exists():
        pytest.skip(f"worked cases {path} not available (../shared is not beside the repository)")
    return json.loads(path.read_text())


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available (../shared/data is not beside the repository)")
    return path
