import os

import pytest

from replay.errors import StoreError
from replay.store import MIGRATIONS, Store, request_digest
from replay.types import Attempt, Completion, Outcome, ToolCall, Usage


def outcome(request_id, arm="candidate", status="ok"):
    completion = Completion(text="hi", tool_calls=(ToolCall("c1", "f", '{"a": 1}'),), finish_reason="stop",
                            usage=Usage(3, 4), latency_ms=12.5, ttft_ms=3.0) if status == "ok" else None  # fmt: skip
    return Outcome(request_id, arm, status, completion, (Attempt(1, 0.0, 12.5, 200),), {"temperature": 0},
                   http_status=200 if status == "ok" else 500, cost_usd=0.001 if status == "ok" else None)  # fmt: skip


def test_runs_outcomes_and_lookup(tmp_path):
    store = Store(str(tmp_path / "a" / "r.db"))
    store.create_run("20260101-000000-aaaaaa", "one", {"k": 1}, "h1")
    store.create_run("20260102-000000-bbbbbb", "two", {"k": 2}, "h2")
    store.add_outcomes("20260102-000000-bbbbbb", [outcome("x"), outcome("y", status="error"), outcome("x", "logged")])
    assert store.done_keys("20260102-000000-bbbbbb") == {("x", "candidate"), ("y", "candidate"), ("x", "logged")}
    assert store.counts("20260102-000000-bbbbbb") == {"candidate": {"ok": 1, "error": 1}, "logged": {"ok": 1}}
    assert store.spent("20260102-000000-bbbbbb") == pytest.approx(0.001)  # the logged arm is not spent
    assert store.get_run("latest").name == "two"
    assert store.get_run("20260101").name == "one"
    with pytest.raises(StoreError, match="ambiguous"):
        store.get_run("2026010")
    with pytest.raises(StoreError, match="no run 'zzz'"):
        store.get_run("zzz")
    with pytest.raises(StoreError, match="no run '2026_1'"):
        store.get_run("2026_1")  # a prefix is matched literally, not as a LIKE pattern
    with pytest.raises(StoreError, match="no run '%'"):
        store.get_run("%")
    store.set_status("20260101-000000-aaaaaa", "interrupted", "SIGTERM")
    run = store.get_run("20260101-000000-aaaaaa")
    assert run.status == "interrupted" and run.message == "SIGTERM" and run.ended_at is not None


def test_reopening_keeps_data_and_migrations_run_once(tmp_path):
    path = str(tmp_path / "r.db")
    store = Store(path)
    store.create_run("r1", "one", {}, "h")
    store.close()
    again = Store(path)
    assert [run.id for run in again.runs()] == ["r1"]
    assert again.db.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)


def _open_at(path, barrier):
    barrier.wait()
    Store(path).close()


def test_processes_opening_an_older_store_at_once_migrate_it_once(tmp_path):
    """A report and a run (or two CI jobs) open a store written by an older version together."""
    import multiprocessing

    path = str(tmp_path / "r.db")
    Store(path).close()
    last = MIGRATIONS[-1].__name__
    db = __import__("sqlite3").connect(path)
    db.execute("DELETE FROM _migrations WHERE name = ?", (last,))
    db.commit()
    db.close()
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(4)
    workers = [context.Process(target=_open_at, args=(path, barrier)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    names = [row[0] for row in Store(path).db.execute("SELECT name FROM _migrations")]
    assert names.count(last) == 1


def test_unopenable_store_is_an_input_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open the store"):
        Store(str(blocker / "r.db"))


def test_a_store_from_a_newer_version_is_refused(tmp_path):
    path = str(tmp_path / "r.db")
    Store(path).close()
    db = __import__("sqlite3").connect(path)
    db.execute("INSERT INTO _migrations VALUES ('m999_from_the_future')")
    db.commit()
    with pytest.raises(StoreError, match=r"r\.db: the store was written by a newer version of replay \(migration "
                                         r"m999_from_the_future; replay .* knows up to m\d{3}_.*\): upgrade replay"):
        Store(path)


def test_a_refused_write_names_the_store_and_leaves_no_transaction_open(tmp_path):
    from replay.errors import StoreWriteError

    store = Store(str(tmp_path / "r.db"))
    store.create_run("r1", "one", {}, "h")
    store.db.execute("PRAGMA max_page_count = %d" % store.db.execute("PRAGMA page_count").fetchone()[0])
    with pytest.raises(StoreWriteError, match=r"r\.db: cannot write to the store \(database or disk is full\)"):
        store.add_outcomes("r1", [outcome(f"x{i}") for i in range(200)])
    assert not store.db.in_transaction
    store.db.execute("PRAGMA max_page_count = 1073741823")
    store.add_outcomes("r1", [outcome("x")])
    assert store.done_keys("r1") == {("x", "candidate")}


def _dead_pid():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _lease(store, run_id, pid, host, age_s):
    import time

    store.db.execute("INSERT OR REPLACE INTO run_owners VALUES (?, ?, ?, 'other', ?)", (run_id, pid, host, time.time() - age_s))


@pytest.mark.parametrize(
    "pid, host, age_s, taken_over",
    [
        ("parent", "here", 0, False),  # a live process on this host
        ("dead", "here", 0, True),  # killed: its pid is gone, the run is free at once
        ("parent", "here", 60, True),  # not renewed: a reused pid does not keep it
        (1, "elsewhere", 0, False),  # another host: trusted while its lease runs
        (1, "elsewhere", 60, True),
    ],
)
def test_a_run_is_owned_by_one_live_process(tmp_path, pid, host, age_s, taken_over):
    import os
    import socket

    from replay.errors import RunInUse

    store = Store(str(tmp_path / "r.db"))
    store.create_run("r1", "one", {}, "h")
    pid = {"parent": os.getppid(), "dead": _dead_pid()}.get(pid, pid)
    _lease(store, "r1", pid, socket.gethostname() if host == "here" else host, age_s)
    if taken_over:
        assert store.get_run("r1").status == "abandoned"
        owner = store.claim("r1")
        assert store.owner("r1") == owner and store.get_run("r1").status == "running"
        store.release("r1", owner)
        assert store.owner("r1") is None
    else:
        assert store.get_run("r1").status == "running"
        with pytest.raises(RunInUse, match=rf"run r1 is being run by another process \(pid {pid} on .*, last seen \d+s ago\)"):
            store.claim("r1")


def test_a_heartbeat_tells_the_owner_whether_the_run_is_still_its_own(tmp_path):
    store = Store(str(tmp_path / "r.db"))
    store.create_run("r1", "one", {}, "h")
    owner = store.claim("r1")
    assert store.heartbeat("r1", owner)
    _lease(store, "r1", 1, "elsewhere", 0)  # taken over while this process was stopped
    assert not store.heartbeat("r1", owner)
    store.release("r1", owner)  # releases only its own lease
    assert store.owner("r1") is not None


def test_a_store_of_an_older_version_opens_and_its_cases_have_no_digest(tmp_path):
    import sqlite3

    path = str(tmp_path / "old.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY)")
    for step in MIGRATIONS[:3]:  # the store as replay wrote it before run owners and case digests
        step(db)
        db.execute("INSERT INTO _migrations VALUES (?)", (step.__name__,))
    db.execute("INSERT INTO runs VALUES ('r1', 'one', '{}', 'h', '0.1', 0, NULL, 'running', 2, NULL)")
    db.execute("INSERT INTO cases VALUES ('r1', 'a', 0, '{}', '{}')")
    db.close()
    store = Store(path)
    assert store.case_digests("r1") == {"a": None}
    assert store.get_run("r1").status == "abandoned"  # left running by a version that kept no owner
    from replay.types import LogRecord

    store.add_cases("r1", [(1, LogRecord("b", {"messages": []}))])
    assert store.case_digests("r1")["b"] == request_digest({"messages": []})


def _read_only_mounts():
    import shutil
    import subprocess

    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _read_only_mounts(), reason="needs unshare (user and mount namespaces) for a read-only mount")
@pytest.mark.parametrize("wal_left", [False, True])
def test_a_store_on_a_read_only_filesystem_is_read(server, tmp_path, wal_left):
    """Read-only commands read a store they cannot write (an artifact mounted read-only in CI)."""
    import json
    import shlex
    import subprocess
    import sys

    from click.testing import CliRunner

    from conftest import NO_GATES, record, write_log
    from replay.cli import cli

    folder = tmp_path / "ro"
    folder.mkdir()
    path = str(folder / "replay.db")
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}") for i in range(3)])
    run = CliRunner().invoke(cli, ["run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "m",
                                   "--store", path, "--quiet", "--gates", NO_GATES])  # fmt: skip
    assert run.exit_code == 0, run.output
    import sqlite3

    forget = sqlite3.connect(path)
    forget.execute("DELETE FROM comparisons")  # so that the report compares, and cannot store them
    forget.commit()
    forget.close()
    if wal_left:  # as a killed process leaves them: the -wal and -shm files beside the store
        keep = sqlite3.connect(path)
        keep.execute("PRAGMA wal_autocheckpoint = 0")
        keep.execute("UPDATE runs SET name = 'renamed'")
        keep.commit()
        assert os.path.exists(path + "-wal")
    python = shlex.quote(sys.executable)
    commands = " && ".join(f"{python} -m replay {command} --store {shlex.quote(path)}"
                           for command in ("runs --json", "report latest --format json", "export latest"))  # fmt: skip
    folder_q = shlex.quote(str(folder))
    script = f"mount --bind {folder_q} {folder_q} && mount -o remount,bind,ro {folder_q} && {commands}"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not even a note that the comparisons could not be stored
    lines = done.stdout.splitlines()
    listed = json.loads(lines[0])
    assert listed["status"] == "completed" and listed["outcomes"] == 3
    assert listed["name"] == ("renamed" if wal_left else "<flags>")  # what the -wal holds is read too
    assert sum(1 for line in lines if line.startswith('{"run_id"')) == 6



