"""The live progress line on a terminal."""

from replay.progress import RichReporter


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
