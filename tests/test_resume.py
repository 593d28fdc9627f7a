"""What a resume checks before it sends anything: the log still holds the run's requests."""

import pytest

from replay.errors import LogChanged
from replay.resume import check_log
from replay.store import Store
from replay.types import LogRecord


def _run(tmp_path, planned):
    store = Store(str(tmp_path / "r.db"))
    store.create_run("run1", "one", {}, "h")
    store.set_planned("run1", planned)
    store.add_cases("run1", [(0, LogRecord("a", {"messages": ["hi"]})), (1, LogRecord("b", {"messages": ["yo"]}))])
    return store


def test_new_records_joining_a_sample_that_was_all_sent_are_a_change(tmp_path):
    store = _run(tmp_path, planned=2)
    records = [LogRecord("a", {"messages": ["hi"]}), LogRecord("b", {"messages": ["yo"]}), LogRecord("c", {})]
    with pytest.raises(LogChanged, match=r"^log\.jsonl: the log changed since run run1 started: 0 sampled record\(s\)"
                                         r" changed, 0 no longer in the sample, 1 new in it; resuming would mix"):
        check_log(store, "run1", ["log.jsonl"], records, {"a", "b", "c"})
    check_log(store, "run1", ["log.jsonl"], records, {"a", "b", "c"}, resend_changed=True)  # they are just sent
    assert set(store.case_digests("run1")) == {"a", "b"}


def test_records_not_yet_dispatched_when_the_run_stopped_are_no_change(tmp_path):
    store = _run(tmp_path, planned=3)  # c was sampled but not dispatched before the stop
    records = [LogRecord("a", {"messages": ["hi"]}), LogRecord("b", {"messages": ["yo"]}), LogRecord("c", {})]
    check_log(store, "run1", ["log.jsonl"], records, {"a", "b", "c"})


def test_resend_changed_forgets_the_changed_and_the_gone(tmp_path):
    store = _run(tmp_path, planned=2)
    check_log(store, "run1", ["log.jsonl"], [LogRecord("a", {"messages": ["edited"]})], {"a"}, resend_changed=True)
    assert store.case_digests("run1") == {}
