"""The renderer registry drives the CLI: ``--format``, the ``--report-*`` options and the
report files come from it, so a renderer registered from outside (here a dummy, as a plugin
would) is offered by ``run``, ``report`` and ``gate`` with no edit to the CLI."""

import re

import pytest
from click.testing import CliRunner

from conftest import NO_GATES, record, write_log
from replay.cli import cli
from replay.reports import RENDERERS, file_renderers, register_renderer, renderers, unregister_renderer
from stored_runs import golden_run

RUN = "golden-run"
DUMMY_HELP = "Write the dummy report here."


def invoke(*args, env=None):
    result = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1", **(env or {})}).invoke(cli, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def render_dummy(evaluation, top=3):
    return f"dummy {evaluation.run.id}: {evaluation.decision.verdict}, top {top}\n"


@pytest.fixture
def dummy():
    """A plugin's renderer: registered here, through the public API only, and forgotten after."""
    register_renderer("dummy", suffix=".txt", option="--report-dummy", help=DUMMY_HELP)(render_dummy)
    yield RENDERERS["dummy"]
    RENDERERS.pop("dummy", None)


@pytest.fixture
def store(tmp_path):
    golden_run(tmp_path / "replay.db")
    return str(tmp_path / "replay.db")


def option_lines(help_text):
    """The options of a --help, one per line, first words only."""
    return [line.split()[0] for line in help_text.splitlines() if line.startswith("  -")]


# --- the built-ins ------------------------------------------------------------------------


def test_the_builtin_renderers_declare_todays_formats_options_and_defaults():
    assert [r.name for r in renderers()] == ["terminal", "markdown", "json", "junit"]
    assert [(r.name, r.option) for r in file_renderers()] == [("json", "--report-json"), ("markdown", "--report-md"),
                                                              ("junit", "--report-junit")]  # fmt: skip
    assert {r.name: (r.suffix, r.top, r.rich, r.step_summary) for r in renderers()} == {
        "terminal": (".txt", 5, True, False), "markdown": (".md", 10, False, True),
        "json": (".json", 20, False, False), "junit": (".xml", None, False, False),
    }  # fmt: skip


@pytest.mark.parametrize("command", ["run", "report", "gate"])
def test_the_report_file_options_come_before_store_in_registry_order(command):
    options = option_lines(invoke(command, "--help").stdout)
    assert options[-5:] == ["--report-json", "--report-md", "--report-junit", "--store", "-h,"]


def test_format_lists_the_registered_formats():
    assert "--format [terminal|markdown|json|junit]" in invoke("report", "--help").stdout


# --- a renderer registered from outside ---------------------------------------------------


def test_a_registered_renderer_is_a_format_and_a_report_file_option_of_every_report_command(dummy):
    assert "--format [terminal|markdown|json|junit|dummy]" in invoke("report", "--help").stdout
    for command in ("run", "report", "gate"):
        help_lines = invoke(command, "--help").stdout.splitlines()
        assert option_lines("\n".join(help_lines))[-3:] == ["--report-dummy", "--store", "-h,"]
        (line,) = [line for line in help_lines if line.startswith("  --report-dummy")]
        assert line.split() == ["--report-dummy", "FILE", *DUMMY_HELP.split()]


def test_report_format_dummy_prints_it_and_passes_top(dummy, store):
    result = invoke("report", RUN, "--store", store, "--format", "dummy")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "dummy golden-run: FAIL, top 3\n", "")
    result = invoke("report", RUN, "--store", store, "--format", "dummy", "--top", "2")
    assert result.stdout == "dummy golden-run: FAIL, top 2\n"


def test_gate_and_report_write_the_dummy_report_file(dummy, store, tmp_path):
    path = tmp_path / "out" / "r.dummy"
    result = invoke("gate", RUN, "--store", store, "--report-dummy", path, "--report-md", tmp_path / "r.md")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"wrote {tmp_path / 'r.md'}", f"wrote {path}"]  # registry order
    assert path.read_text(encoding="utf-8") == "dummy golden-run: FAIL, top 3\n"
    path.unlink()
    result = invoke("report", RUN, "--store", store, "--format", "json", "--report-dummy", path)
    assert result.exit_code == 0 and result.stderr == f"wrote {path}\n"
    assert path.read_text(encoding="utf-8") == "dummy golden-run: FAIL, top 3\n"


def test_run_writes_the_dummy_report_file_and_checks_its_path_first(dummy, server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}") for i in range(3)])
    args = ["run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "m", "--store", store_path,
            "--quiet", "--gates", NO_GATES]  # fmt: skip
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke(*args, "--report-dummy", blocker / "r.dummy")
    assert result.exit_code == 2 and server.stats.requests == 0
    assert result.stderr == f"Error: {blocker / 'r.dummy'}: cannot write the report ({blocker} is not a directory)\n"
    result = invoke(*args, "--report-dummy", tmp_path / "r.dummy")
    assert result.exit_code == 0, result.output
    run_id = re.search(r"^run (\S+): completed$", result.stderr, re.M).group(1)
    assert (tmp_path / "r.dummy").read_text(encoding="utf-8") == f"dummy {run_id}: PASS, top 3\n"
    assert result.stderr.splitlines()[-1] == f"wrote {tmp_path / 'r.dummy'}"


def test_a_step_summary_renderer_is_appended_after_markdown(store, tmp_path):
    register_renderer("summary_dummy", suffix=".txt", step_summary=True)(render_dummy)
    try:
        summary = tmp_path / "summary.md"
        assert invoke("gate", RUN, "--store", store, env={"GITHUB_STEP_SUMMARY": str(summary)}).exit_code == 1
        markdown = invoke("report", RUN, "--store", store, "--format", "markdown").stdout
        assert summary.read_text(encoding="utf-8") == markdown + "dummy golden-run: FAIL, top 3\n"
    finally:
        unregister_renderer("summary_dummy")


def test_an_unregistered_renderer_is_gone_from_the_cli(dummy, store, tmp_path):
    assert invoke("report", RUN, "--store", store, "--format", "dummy").exit_code == 0
    unregister_renderer("dummy")
    result = invoke("report", RUN, "--store", store, "--format", "dummy")
    assert result.exit_code == 2
    assert "Error: Invalid value for '--format': 'dummy' is not one of 'terminal', 'markdown', 'json', 'junit'." in result.stderr
    result = invoke("gate", RUN, "--store", store, "--report-dummy", tmp_path / "r")
    assert result.exit_code == 2 and "No such option '--report-dummy'" in result.stderr
    assert "--report-dummy" not in invoke("gate", "--help").stdout


# --- registrations the CLI could not offer ------------------------------------------------


@pytest.mark.parametrize("name, keys, message", [
    ("json", {"suffix": ".json"}, "renderer 'json' is already registered"),
    ("Bad-Name", {"suffix": ".x"}, "renderer name 'Bad-Name': lower-case letters, digits and '_' only"),
    ("other", {"suffix": ".x", "option": "--out"}, "renderer 'other': its option must be --report-NAME, not '--out'"),
    ("other", {"suffix": ".x", "option": "--report-md"}, "renderer 'other': option --report-md is already taken"),
    ("other", {"suffix": ".x", "option": "--report-other", "rich": True},
     "renderer 'other': rich renderables cannot be written to a file"),
    ("other", {"suffix": ".x", "rich": True, "step_summary": True},
     "renderer 'other': rich renderables cannot go to $GITHUB_STEP_SUMMARY"),
])  # fmt: skip
def test_a_registration_the_cli_could_not_offer_is_refused(name, keys, message):
    before = dict(RENDERERS)
    with pytest.raises(ValueError) as raised:
        register_renderer(name, **keys)(render_dummy)
    assert str(raised.value) == message
    assert RENDERERS == before
