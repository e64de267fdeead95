"""A command's store: bad input leaves no store file behind; a store that was there stays."""

from __future__ import annotations

import pytest

from qimeng.core.verdict import BadInput
from qimeng.kernels.store import Store, command_store
from qimeng.settings import Settings


def test_bad_input_removes_the_store_file_it_created(tmp_path, monkeypatch):
    path = tmp_path / "new_dir" / "q.db"
    monkeypatch.setenv("QIMENG_STORE", str(path))
    with pytest.raises(BadInput):
        with command_store(Settings.from_env()):
            assert path.exists()
            raise BadInput("broken problem")
    assert not path.parent.exists()


def test_bad_input_keeps_a_store_that_was_there(tmp_path, monkeypatch):
    path = tmp_path / "q.db"
    monkeypatch.setenv("QIMENG_STORE", str(path))
    with Store(path) as store:
        store.put_run("earlier", {})
    with pytest.raises(BadInput):
        with command_store(Settings.from_env()):
            raise BadInput("broken problem")
    with Store(path) as store:
        assert [r.name for r in store.runs()] == ["earlier"]


def test_a_good_run_keeps_the_new_store(tmp_path, monkeypatch):
    path = tmp_path / "q.db"
    monkeypatch.setenv("QIMENG_STORE", str(path))
    with command_store(Settings.from_env()) as store:
        store.put_run("r", {})
    assert path.exists()
