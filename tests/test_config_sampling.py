"""The sampling keys of a scenario (``sample.since``, ``until``, ``stratify_by``, ``min_per_stratum``,
``dedupe``) and their flags: checked when the scenario loads, one line naming the key, exit 2."""

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from replay.cli import cli
from replay.errors import ScenarioError
from replay.sampling import SampleSpec
from replay.scenario_file import load_scenario, scenario_from_snapshot

BASE = """
name: t
logs: log.jsonl
candidate: {base_url: http://127.0.0.1:9/v1, model: m}
"""


def scenario_file(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text(BASE + text)
    return str(path)


@pytest.mark.parametrize("extra, message", [
    ("sample: {stratfy_by: category}", "sample.stratfy_by: unknown key (did you mean 'sample.stratify_by'?)"),
    ("sample: {dedupe: yes please}", "sample.dedupe: expected true or false, got 'yes please'"),
    ("sample: {dedupe: 1}", "sample.dedupe: expected true or false, got 1"),
    ("sample: {since: yesterday}", "sample.since: expected an ISO 8601 time (2026-11-01T09:00:00Z) or a span before"
                                   " now such as 7d, 12h, 30m or 2w, got 'yesterday'"),
    ("sample: {until: 5}", "sample.until: expected an ISO 8601 time or a span before now such as 12h, got 5"),
    ("sample: {since: 2026-11-05, until: 2026-11-01}",
     "sample.until: expected a time after sample.since (2026-11-05T00:00:00Z), got 2026-11-01T00:00:00Z"),
    ("sample: {stratify_by: []}", "sample.stratify_by: expected at least one key"),
    ("sample: {stratify_by: [category, 3]}", "sample.stratify_by: expected metadata key names, hour_of_day or weekday, got 3"),
    ("sample: {stratify_by: [weekday, weekday]}", "sample.stratify_by: a key is listed twice"),
    ("sample: {stratify_by: {a: 1}}", "sample.stratify_by: expected a metadata key, hour_of_day, weekday, or a list of them, got {'a': 1}"),
    ("sample: {min_per_stratum: 3}", "sample.min_per_stratum: needs sample.stratify_by (the strata it is the floor of)"),
    ("sample: {stratify_by: weekday, min_per_stratum: -1}",
     "sample.min_per_stratum: expected an integer from 0 to 9,223,372,036,854,775,807, got -1"),
])  # fmt: skip
def test_a_bad_sampling_key_is_one_line_naming_it(tmp_path, extra, message):
    path = scenario_file(tmp_path, extra)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value) == f"{path}: {message}"


def test_the_cli_says_it_in_one_line_with_exit_2(tmp_path):
    path = scenario_file(tmp_path, "sample: {dedupe: 'no'}")
    result = CliRunner().invoke(cli, ["run", path, "--store", str(tmp_path / "s.db")])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}: sample.dedupe: expected true or false, got 'no'\n"
    path = scenario_file(tmp_path, "sample: {dedupe: true}")
    result = CliRunner().invoke(cli, ["plan", path, "--since", "last week"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {path}: sample.since: expected an ISO 8601 time") and result.stderr.count("\n") == 1


def test_keys_and_flags_resolve_to_a_stored_window(tmp_path):
    path = scenario_file(tmp_path, "sample: {since: 2026-11-01T09:00:00+01:00, until: 2026-11-08, stratify_by: [category, "
                                   "hour_of_day], min_per_stratum: 3, dedupe: true}")  # fmt: skip
    spec = load_scenario(path).sample
    assert spec == SampleSpec(since="2026-11-01T08:00:00Z", until="2026-11-08T00:00:00Z",
                              stratify_by=("category", "hour_of_day"), min_per_stratum=3, dedupe=True)  # fmt: skip
    before = datetime.now(timezone.utc)
    flagged = load_scenario(path, {"sample.since": "7d", "sample.until": "1h", "sample.dedupe": False}).sample
    since, until = (datetime.fromisoformat(moment.replace("Z", "+00:00")) for moment in (flagged.since, flagged.until))
    assert before - timedelta(days=7, seconds=5) <= since <= datetime.now(timezone.utc) - timedelta(days=7)
    assert until - since == timedelta(days=7) - timedelta(hours=1)  # both counted back from the same now
    assert flagged.dedupe is False


def test_a_snapshot_keeps_the_resolved_window_and_leaves_unset_keys_out(tmp_path):
    plain = load_scenario(scenario_file(tmp_path, "sample: {rate: 0.5, max: 10, seed: 3}"))
    assert plain.snapshot()["sample"] == {"rate": 0.5, "max": 10, "seed": 3}  # as before: old runs keep their digests
    extended = load_scenario(scenario_file(tmp_path, "sample: {since: 30m, stratify_by: weekday, dedupe: true}"))
    snap = extended.snapshot()
    assert snap["sample"]["stratify_by"] == ["weekday"] and snap["sample"]["min_per_stratum"] == 1
    assert scenario_from_snapshot(snap).sample == extended.sample  # a resume samples the same window
