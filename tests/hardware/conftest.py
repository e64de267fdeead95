"""Shared fixtures of the hardware tests."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def write(tmp_path: Path):
    """Write a text file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


@pytest.fixture(autouse=True)
def _private_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test writes its store and work files under its own tmp_path."""
    monkeypatch.setenv("QIMENG_STORE", str(tmp_path / "store.db"))
    monkeypatch.setenv("QIMENG_WORK_DIR", str(tmp_path / "work"))
