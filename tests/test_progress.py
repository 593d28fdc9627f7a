"""replay.progress: warnings quote endpoints, so they are escaped."""

import io

from replay.progress import PlainReporter, RichReporter


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
