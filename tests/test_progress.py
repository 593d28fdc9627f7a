"""replay.progress: warnings quote endpoints, so they are escaped; an unknown spend is not $0; the live line
leaves room for an echoed ^C."""

import io

from replay.progress import PlainReporter, RichReporter, spend_text


def test_spend_is_unknown_once_an_answer_had_no_price():
    assert spend_text(0.0123, unpriced=False) == "$0.0123"
    assert spend_text(0.0, unpriced=True) == "spend unknown"
    assert spend_text(0.0123, unpriced=True) == "$0.0123 + unknown"


def test_plain_warnings_show_control_characters_as_escapes():
    stream = io.StringIO()
    PlainReporter(stream).warn("no price for model 'm\x1b]0;title\x07'")
    assert stream.getvalue() == "warning: no price for model 'm\\x1b]0;title\\x07'\n"


def test_rich_warnings_do_not_run_markup_from_the_message():
    from rich.console import Console

    reporter = RichReporter()
    reporter.console = Console(file=io.StringIO(), color_system=None, width=100)
    reporter.warn("model '[bold red]m[/bold red]\x1b[2J'")
    assert reporter.console.file.getvalue() == "warning: model '[bold red]m[/bold red]\\x1b[2J'\n"


def test_the_bar_knows_the_spend_is_unknown_after_an_unpriced_answer():
    from replay.types import Completion, Outcome, Usage

    reporter = RichReporter()
    answer = Completion(text="hi", tool_calls=(), finish_reason="stop", usage=Usage(3, 1), latency_ms=5, ttft_ms=1)
    reporter.outcome(Outcome("r1", "candidate", "error", None, (), {}, 500, "http_error", "x"), 0.0)
    assert not reporter.unpriced  # an error costs nothing, priced or not
    reporter.outcome(Outcome("r2", "candidate", "ok", answer, (), {}, 200, cost_usd=0.001), 0.001)
    assert not reporter.unpriced
    reporter.outcome(Outcome("r3", "candidate", "ok", answer, (), {}, 200, cost_usd=None), 0.001)
    assert reporter.unpriced


def test_the_progress_line_leaves_room_for_the_echo_of_ctrl_c(monkeypatch):
    """At full width the terminal's "^C" wraps the line and the next redraw leaves a copy of it."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    reporter = RichReporter()
    assert reporter.console.is_terminal
    with reporter.console.capture() as captured:
        reporter.start("20261201-000000-abcdef", 200, 200, resumed=False)
        reporter.stop()
    lines = [line for line in captured.get().splitlines() if "replaying" in line]
    assert lines and all(len(_plain(line)) <= 78 for line in lines)


def _plain(line):
    import re

    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line)
