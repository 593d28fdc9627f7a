"""A real ``replay run`` process, killed (SIGKILL) or cancelled (SIGTERM) mid-run, then resumed;
raced by a second process; on a disk that fills up."""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from conftest import NO_GATES, record, write_log
from replay.cli import cli

N = 40
CONCURRENCY = 4


def start_run(server, log, store_path, *extra):
    cmd = [sys.executable, "-m", "replay", "run", "--logs", log, "--candidate-url", server.base_url,
           "--candidate-model", "m", "--concurrency", str(CONCURRENCY), "--store", store_path, "--gates", NO_GATES,
           *extra]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "REPLAY_RAISE_ERRORS"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def stored(store_path):
    if not os.path.exists(store_path):
        return 0
    try:
        db = sqlite3.connect(store_path, timeout=5)
        return db.execute("SELECT COUNT(*) FROM results WHERE arm = 'candidate'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def wait_for_outcomes(store_path, at_least, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if stored(store_path) >= at_least:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the run stored too few outcomes in time")


def test_kill_9_loses_at_most_the_requests_in_flight(make_server, tmp_path, store_path):
    server = make_server(latency_ms=150)
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i:02d}", f"q{i}") for i in range(N)])
    proc = start_run(server, log, store_path)
    wait_for_outcomes(store_path, 8, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = stored(store_path)
    sent_before = server.stats.requests
    assert 8 <= kept < N
    assert sent_before - kept <= CONCURRENCY  # only what was in flight is lost

    result = CliRunner().invoke(cli, ["run", "--resume", "latest", "--store", store_path, "--quiet", "--gates", NO_GATES], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert stored(store_path) == N
    resent = server.stats.requests - sent_before
    assert resent == N - kept  # nothing with a stored outcome is sent again
    contents = [body["messages"][0]["content"] for body in server.stats.bodies]
    assert len(set(contents)) == N


def sigterm_after_four_outcomes(make_server, tmp_path, store_path, latency_ms):
    """A run of N requests against a server answering in ``latency_ms``, sent SIGTERM once four
    outcomes are stored; it must end as an interrupted run (exit 3). Returns (server, stderr)."""
    server = make_server(latency_ms=latency_ms)
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i:02d}", f"q{i}") for i in range(N)])
    proc = start_run(server, log, store_path)
    wait_for_outcomes(store_path, 4, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 3, err
    return server, err


def test_sigterm_marks_the_run_interrupted_and_prints_the_resume_command(make_server, tmp_path, store_path):
    server, err = sigterm_after_four_outcomes(make_server, tmp_path, store_path, latency_ms=150)
    db = sqlite3.connect(store_path)
    run_id, status = db.execute("SELECT id, status FROM runs").fetchone()
    assert status == "interrupted"
    assert f"run {run_id}: interrupted; resume with:\n  replay run --resume {run_id} --store {store_path}\n" in err
    assert "Traceback" not in err
    result = CliRunner().invoke(cli, ["run", "--resume", run_id, "--store", store_path, "--quiet", "--gates", NO_GATES], catch_exceptions=False)
    assert result.exit_code == 0
    assert stored(store_path) == N


def read_until(stream, needle):
    """Lines of ``stream`` up to the one containing ``needle`` (the process's progress is plain: not a TTY)."""
    lines = []
    for line in stream:
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} never came: {lines}")


def test_answers_in_flight_at_sigterm_are_stored_and_nothing_is_sent_after(make_server, tmp_path, store_path):
    server, err = sigterm_after_four_outcomes(make_server, tmp_path, store_path, latency_ms=300)
    kept = stored(store_path)
    assert kept == server.stats.requests < N  # every request sent was answered and stored
    run_id = sqlite3.connect(store_path).execute("SELECT id FROM runs").fetchone()[0]
    assert err.splitlines() == [
        f"run {run_id}: {N} sampled requests, {N} to send",
        "warning: no price for model 'm': its cost counts as unknown (add it under 'prices')",
        f"warning: SIGTERM: stopped dispatching; waiting up to 5s for {CONCURRENCY} request(s) in flight"
        " (send SIGTERM again to stop at once)",
        f"run {run_id}: interrupted; resume with:", f"  replay run --resume {run_id} --store {store_path}",
        f"Error: SIGTERM: stopped dispatching; the {CONCURRENCY} request(s) in flight answered and were stored",
    ]
    assert sqlite3.connect(store_path).execute("SELECT COUNT(*) FROM run_owners").fetchone() == (0,)  # released
    result = CliRunner().invoke(cli, ["run", "--resume", "latest", "--store", store_path, "--quiet", "--gates", NO_GATES], catch_exceptions=False)
    assert result.exit_code == 0
    assert server.stats.requests == N and stored(store_path) == N


def test_a_second_signal_stops_at_once_and_names_what_a_resume_re_sends(make_server, tmp_path, store_path):
    server = make_server(latency_ms=60_000)
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i:02d}", f"q{i}") for i in range(N)])
    proc = start_run(server, log, store_path, "--timeout", "120")
    deadline = time.time() + 20
    while server.stats.requests < CONCURRENCY and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    read_until(proc.stderr, "waiting up to 5s")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 3, err
    assert err.splitlines()[-1] == (
        f"Error: SIGINT again: stopped at once; {CONCURRENCY} request(s) in flight not stored, a resume re-sends them"
    )
    assert stored(store_path) == 0
    assert sqlite3.connect(store_path).execute("SELECT status FROM runs").fetchone() == ("interrupted",)


def test_a_live_run_refuses_a_second_process_and_is_abandoned_once_killed(make_server, tmp_path, store_path):
    import json

    server = make_server(latency_ms=150)
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i:02d}", f"q{i}") for i in range(N)])
    proc = start_run(server, log, store_path)
    wait_for_outcomes(store_path, 4, proc)
    runner = CliRunner()
    second = runner.invoke(cli, ["run", "--resume", "latest", "--store", store_path, "--quiet", "--gates", NO_GATES])
    assert second.exit_code == 2
    run_id = sqlite3.connect(store_path).execute("SELECT id FROM runs").fetchone()[0]
    assert second.stderr.startswith(f"Error: run {run_id} is being run by another process (pid {proc.pid} on ")
    assert second.stderr.endswith("s ago): wait for it to end, or stop it, then resume\n")
    listing = runner.invoke(cli, ["runs", "--json", "--store", store_path])
    assert json.loads(listing.stdout)["status"] == "running"

    proc.send_signal(signal.SIGKILL)
    proc.wait()
    listing = runner.invoke(cli, ["runs", "--json", "--store", store_path])
    assert json.loads(listing.stdout)["status"] == "abandoned"
    kept, sent_before = stored(store_path), server.stats.requests
    resumed = runner.invoke(cli, ["run", "--resume", "latest", "--store", store_path, "--quiet", "--gates", NO_GATES])
    assert resumed.exit_code == 0, resumed.output
    assert server.stats.requests - sent_before == N - kept  # the second process sent only what was missing
    assert sqlite3.connect(store_path).execute("SELECT COUNT(*) FROM run_owners").fetchone() == (0,)  # released


def _can_mount():
    import shutil

    return bool(shutil.which("unshare")) and subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_mount(), reason="needs unshare (user and mount namespaces) for a tiny tmpfs")
def test_a_really_full_disk_ends_the_run_in_one_line_and_marks_it(make_server, tmp_path):
    import json
    import shlex

    server = make_server(latency_ms=10)
    long = "x" * 2000
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i:03d}", f"q{i} {long}") for i in range(300)])
    disk = tmp_path / "disk"
    disk.mkdir()
    store = str(disk / "replay.db")
    replay = f"{shlex.quote(sys.executable)} -m replay"
    script = (f"mount -t tmpfs -o size=400k tmpfs {shlex.quote(str(disk))} && {replay} run --logs {shlex.quote(log)}"
              f" --candidate-url {server.base_url} --candidate-model m --quiet --store {shlex.quote(store)}"
              f" --gates {shlex.quote(NO_GATES)}; echo rc=$? >&2; {replay} runs --json --store {shlex.quote(store)}")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "REPLAY_RAISE_ERRORS"}
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120, env=env)
    errors = done.stderr.splitlines()
    assert errors[-1] == "rc=3", done.stderr
    assert "Traceback" not in done.stderr
    assert errors[-2].startswith(f"Error: {store}: cannot write to the store (database or disk is full): dispatching stopped; ")
    listed = json.loads(done.stdout)
    if "the run could not be marked failed" in errors[-2]:  # the disk had no room left even for that
        assert listed["status"] == "abandoned"  # running, with no live owner: a resume finishes it
    else:
        assert listed["status"] == "failed" and listed["message"] == errors[-2][len("Error: "):]
    assert listed["outcomes"] < 300


def test_requests_waiting_for_their_turn_at_a_signal_are_not_sent(make_server, tmp_path, store_path):
    """With --rpm, most workers wait for their turn: a signal must not let them go out afterwards."""
    server = make_server(latency_ms=50)
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i:02d}", f"q{i}") for i in range(N)])
    proc = start_run(server, log, store_path, "--rpm", "120")  # one request every 0.5 s, 4 workers
    wait_for_outcomes(store_path, 2, proc)
    at_signal = server.stats.requests
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 3, err
    assert server.stats.requests <= at_signal + 1  # at most the one already on its way
    assert stored(store_path) == server.stats.requests
    assert re.search(r"; [1-4] waiting for their turn or a retry were not sent \(a resume sends them\)$", err.splitlines()[-1])
