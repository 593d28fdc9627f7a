"""What a resume checks before it sends anything: that the log still holds the run's requests."""

from __future__ import annotations

from typing import Iterable

from replay.errors import LogChanged
from replay.store import Store, request_digest
from replay.types import LogRecord


def check_log(store: Store, run_id: str, paths: list[str], records: Iterable[LogRecord], selected: set[str],
              resend_changed: bool = False) -> None:  # fmt: skip
    """Refuse to resume a run whose sampled records changed since it started, or with
    ``resend_changed`` drop what no longer holds so that the resume sends it afresh.

    ``records`` are the log's sampled records (``selected`` their ids) as read now. A record
    whose request changed, or that is no longer in the sample, would mix old answers with new
    requests; so would new records joining a sample that was all sent. Cases stored before
    digests were have none and are checked for presence only."""
    stored = store.case_digests(run_id)
    if not stored:
        return
    gone = [request_id for request_id in stored if request_id not in selected]
    changed = [record.id for record in records if stored.get(record.id) not in (None, request_digest(record.request))]
    planned = store.get_run(run_id).planned or 0
    # records may not all have been stored before the stop, so new ones show in the count:
    # more are sampled now than were planned, less those gone
    new = max(len(selected.difference(stored)) if len(stored) >= planned else 0, len(selected) - (planned - len(gone)))
    if not (gone or changed or new):
        return
    if resend_changed:
        store.forget(run_id, changed + gone)
        return
    counts = [f"{len(changed)} sampled record(s) changed", f"{len(gone)} no longer in the sample"]
    counts += [f"{new} new in it"] if new else []
    examples = ", ".join((changed + gone)[:3])
    raise LogChanged(
        f"{', '.join(paths)}: the log changed since run {run_id} started: {', '.join(counts)}"
        f"{f' (e.g. {examples})' if examples else ''}; resuming would mix old answers with new requests:"
        " start a new run, or resume with --resend-changed to re-send the changed records and drop the missing ones"
    )
