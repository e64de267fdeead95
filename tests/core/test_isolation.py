import socket
import subprocess
from pathlib import Path

import pytest

from qimeng.core import isolation
from qimeng.settings import Settings


def _run(cmd: list[str], work: Path, read_only: list[Path] = ()) -> subprocess.CompletedProcess:
    wrapped = isolation.isolate(cmd, work, read_only)
    assert wrapped.isolation.mode == "bwrap", wrapped.isolation.warning
    return subprocess.run(wrapped.argv, cwd=work, capture_output=True, text=True, timeout=60)


def test_read_only_system_private_tmp_and_etc(tmp_path: Path):
    work, outside = tmp_path / "work", tmp_path / "outside.txt"
    work.mkdir()
    script = (f"cat /etc/hostname; hostname; echo x > {outside}; echo x > /usr/qimeng-probe; "
              "echo y > /tmp/private && echo tmp-ok; echo z > inside.txt; ls /etc")
    run = _run(["sh", "-c", script], work)
    assert "No such file" in run.stderr and "Read-only file system" in run.stderr
    assert socket.gethostname() not in run.stdout and isolation.SANDBOX_HOSTNAME in run.stdout
    assert "tmp-ok" in run.stdout and not outside.exists() and not Path("/usr/qimeng-probe").exists()
    assert (work / "inside.txt").read_text() == "z\n"
    assert set(run.stdout.split()) >= {"ld.so.cache", "passwd"} and "hostname" not in run.stdout.split()


def test_named_files_are_visible_read_only(tmp_path: Path):
    shared, work = tmp_path / "input.txt", tmp_path / "work"
    shared.write_text("data\n")
    work.mkdir()
    run = _run(["sh", "-c", f"cat {shared}; echo more >> {shared}"], work, [shared])
    assert run.stdout == "data\n" and "Read-only file system" in run.stderr and shared.read_text() == "data\n"


def test_what_python_imports_from_under_tmp_stays_importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A checkout or virtual environment under /tmp (a CI clone) would be hidden by the private /tmp."""
    package, work = tmp_path / "site" / "qimeng_probe_pkg", tmp_path / "work"
    package.mkdir(parents=True)
    work.mkdir()
    (package / "__init__.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(package.parent))
    run = _run(["python3", "-c", f"import sys; sys.path.insert(0, {str(package.parent)!r}); "
                "import qimeng_probe_pkg; print(qimeng_probe_pkg.VALUE)"], work)
    assert run.stdout == "42\n", run.stderr


def test_no_network(tmp_path: Path):
    run = _run(["cat", "/proc/net/dev"], tmp_path)
    assert [line.split(":")[0].strip() for line in run.stdout.splitlines()[2:]] == ["lo"]


def test_fallback_says_why(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("QIMENG_ISOLATION", "none")
    wrapped = isolation.isolate(["true"], Path("."))
    assert wrapped.argv == ["true"] and wrapped.preexec_fn is not None
    assert wrapped.isolation.describe == "none (no filesystem isolation: disabled by QIMENG_ISOLATION=none)"
    monkeypatch.delenv("QIMENG_ISOLATION")
    monkeypatch.setattr(isolation.shutil, "which", lambda name: None)
    isolation._bwrap_works.cache_clear()
    try:
        assert "bubblewrap (bwrap) is not installed" in isolation.probe().warning
    finally:
        isolation._bwrap_works.cache_clear()


def test_bad_setting(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("QIMENG_ISOLATION", "maybe")
    with pytest.raises(ValueError, match="QIMENG_ISOLATION='maybe' is not one of auto, none"):
        Settings.from_env()
