"""The sandbox: private result channel, timeouts that kill the process group, crashes, env allowlist."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from qimeng.core.sandbox import run_job
from qimeng.settings import Settings

from processes import running  # tests/core/processes.py

JOBS_DIR = str(Path(__file__).parent)


def job(payload: dict, timeout_s: float = 20.0, settings: Settings | None = None, **kw):
    return run_job("sandbox_jobs", payload, timeout_s=timeout_s, settings=settings,
                   extra_env={"PYTHONPATH": JOBS_DIR}, **kw)


def test_echo_returns_payload_through_private_channel():
    result = job({"action": "echo", "value": [1, "a"]})
    assert result.payload == {"echo": [1, "a"]}
    assert result.returncode == 0 and not result.timed_out


def test_printed_or_forged_results_are_not_taken():
    result = job({"action": "forge"})
    assert result.payload == {"echo": "real"}
    assert '"forged"' in result.stdout
    assert result.forged_messages >= 1


def test_timeout_kills_the_whole_process_group():
    result = job({"action": "sleep"}, timeout_s=1.0)
    assert result.timed_out and result.payload is None
    assert result.signal == signal.SIGKILL
    assert result.kill_s is not None and result.kill_s < 2.0
    assert 1.0 <= result.wall_s < 5.0
    child_pid = int(result.stdout.split("child=")[1].split()[0])
    assert not running(child_pid)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_parent_takes_its_jobs_with_it(tmp_path, sig):
    # A parent supervising a job from a daemon thread (as bench's pool does) gets Ctrl-C, `timeout`'s
    # SIGTERM or an OOM killer's SIGKILL (the last two run no atexit hook): the job, in its own
    # process session, must not keep running.
    pid_file = tmp_path / "job.pid"
    parent = textwrap.dedent(f"""
        import threading, time
        from qimeng.core.sandbox import run_job
        from qimeng.core import sandbox
        threading.Thread(target=lambda: run_job("sandbox_jobs", {{"action": "sleep"}}, timeout_s=60.0,
                         extra_env={{"PYTHONPATH": {JOBS_DIR!r}}}), daemon=True).start()
        while not sandbox._LIVE_GROUPS:
            time.sleep(0.05)
        time.sleep(1.0)  # the job is past its start and sleeping
        open({str(pid_file)!r}, "w").write(str(next(iter(sandbox._LIVE_GROUPS))))
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", parent])
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    job_pid = int(pid_file.read_text())
    assert running(job_pid)
    proc.send_signal(sig)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while running(job_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(job_pid)


def test_segfault_is_reported_as_a_signal():
    result = job({"action": "segfault"})
    assert result.signal == signal.SIGSEGV and result.payload is None
    assert "SIGSEGV" in result.describe_exit()


def test_os_exit_without_result_leaves_no_payload():
    result = job({"action": "exit0"})
    assert result.returncode == 0 and result.payload is None and not result.timed_out


def test_captured_output_is_bounded():
    settings = Settings(max_captured_output_bytes=1000)
    result = job({"action": "flood"}, settings=settings)
    assert result.payload == {"echo": "flooded"}
    assert result.stdout.endswith("END") and "bytes dropped" in result.stdout
    assert len(result.stdout) < 1100


def test_environment_is_allowlisted_and_directories_private(monkeypatch):
    monkeypatch.setenv("FAKE_API_KEY", "sk-planted-secret")
    result = job({"action": "env"})
    env, cwd = result.payload["env"], result.payload["cwd"]
    assert "FAKE_API_KEY" not in env and "sk-planted-secret" not in str(env)
    for name in ("HOME", "TMPDIR", "TRITON_CACHE_DIR", "TORCH_EXTENSIONS_DIR"):
        assert env[name].startswith(cwd)
    assert not Path(cwd).exists()  # removed after the job


def test_streamed_messages_reset_the_timeout():
    seen = []
    result = job({"action": "stream", "n": 4, "pause_s": 0.4}, timeout_s=0.8,
                 on_message=lambda message, output: seen.append((message, output.stdout)))
    assert not result.timed_out
    assert [m["i"] for m in result.messages] == [0, 1, 2, 3] == [m["i"] for m, _ in seen]
    assert [stdout for _, stdout in seen] == ["step 0\n", "step 0\nstep 1\n", "step 0\nstep 1\nstep 2\n",
                                             "step 0\nstep 1\nstep 2\nstep 3\n"]  # output up to each message


def _commands_job():
    from qimeng.core.command_job import Job

    return Job("sandbox_commands", {"name": "a"}, extra_env={"PYTHONPATH": JOBS_DIR})


def test_a_job_answers_commands_one_by_one():
    job = _commands_job()
    try:
        assert job.receive(20.0) == {"ready": "a"}
        for value in (1, "two", [3]):
            job.send({"cmd": "echo", "value": value})
            assert job.receive(5.0) == {"echo": value}
        assert job.unasked() == 0
    finally:
        job.close()
    assert job.proc.poll() is not None


def test_a_stopped_job_does_not_run_until_resumed():
    job = _commands_job()
    try:
        assert job.receive(20.0) == {"ready": "a"}
        job.send({"cmd": "spin", "s": 0.3})
        time.sleep(0.05)
        assert job.stop_and_wait(1.0) and job.is_stopped()
        ticks = job.cpu_ticks()
        time.sleep(0.3)
        assert job.cpu_ticks() == ticks  # nothing of it ran while stopped
        assert job.receive(0.2) is None and job.timed_out  # no answer while stopped: killed as hung
    finally:
        job.close()


def test_answers_written_before_a_command_and_forged_lines_are_seen():
    job = _commands_job()
    try:
        assert job.receive(20.0) == {"ready": "a"}
        job.send({"cmd": "answer_twice"})
        assert job.receive(5.0) == {"echo": 1}
        time.sleep(0.2)
        assert job.unasked() == 1  # the second answer came before anything asked for it
        assert job.receive(1.0) == {"echo": 2}
        job.send({"cmd": "forge"})
        assert job.receive(5.0) == {"echo": "real"} and job.forged_messages >= 1
    finally:
        job.close()


def test_a_job_that_is_silent_too_long_is_killed_with_its_group():
    job = _commands_job()
    try:
        assert job.receive(20.0) == {"ready": "a"}
        job.send({"cmd": "spin", "s": 30})
        started = time.monotonic()
        assert job.receive(0.5) is None and job.timed_out
        assert time.monotonic() - started < 3 and job.proc.poll() is not None
    finally:
        job.close()


def _isolated_job(settings: Settings | None = None):
    from qimeng.core.command_job import Job
    from qimeng.core.isolation import Binds

    return Job("sandbox_commands", {"name": "a"}, extra_env={"PYTHONPATH": JOBS_DIR}, settings=settings, binds=Binds())


def test_an_isolated_job_is_stopped_and_read_through_its_own_process():
    from qimeng.core.isolation import probe

    if probe().mode != "bwrap":
        pytest.skip("bubblewrap cannot build namespaces here")
    job = _isolated_job()
    try:
        assert job.isolation.mode == "bwrap" and job.target_pid != job.pid  # bwrap, then the job as its PID 1
        assert job.receive(20.0) == {"ready": "a"}
        assert "sandbox_commands" in Path(f"/proc/{job.target_pid}/cmdline").read_bytes().decode()
        job.send({"cmd": "spin", "s": 0.3})
        time.sleep(0.05)
        assert job.stop_and_wait(1.0, every_thread=True) and job.is_stopped()
        ticks = job.cpu_ticks()
        time.sleep(0.3)
        assert job.cpu_ticks() == ticks and ticks > 0  # the job's own CPU time, not bwrap's
        job.resume()
        assert job.receive(10.0) == {"spun": True}
    finally:
        job.close()
    deadline = time.monotonic() + 5.0  # the job's process, killed with bwrap's group, is reaped by init
    while Path(f"/proc/{job.target_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.proc.poll() is not None and not Path(f"/proc/{job.target_pid}").exists()


def test_a_job_runs_unisolated_with_a_stated_reason_when_asked():
    job = _isolated_job(Settings(isolation="none"))
    try:
        assert job.isolation.mode == "none" and "QIMENG_ISOLATION=none" in job.isolation.warning
        assert job.target_pid == job.pid and job.receive(20.0) == {"ready": "a"}
    finally:
        job.close()
