"""replay.reports.escape: log and endpoint text made inert for terminals, Markdown and XML."""

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay.reports.escape import clip, markup, md, md_code, term, visible, xml

CONTROLS = [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))]
BIDI = ["\u202e", "\u2066", "\u200f", "\u061c"]


@pytest.mark.parametrize("char", CONTROLS + BIDI + ["\ud800", "\uffff"])
def test_every_control_character_is_shown_as_an_escape(char):
    shown = visible(f"a{char}b")
    assert char not in shown and shown.startswith("a\\") and shown.endswith("b") and len(shown) > 3


@pytest.mark.parametrize("char, shown", [("\x1b", "\\x1b"), ("\x00", "\\x00"), ("\x9b", "\\x9b"), ("\x7f", "\\x7f"),
                                         ("\n", "\\n"), ("\t", "\\t"), ("\r", "\\r"), ("\u202e", "\\u202e"),
                                         ("\ud800", "\\ud800")])  # fmt: skip
def test_escapes_read_like_python_string_escapes(char, shown):
    assert visible(f"a{char}b") == f"a{shown}b"


def test_multiline_text_keeps_line_breaks_and_tabs_only():
    assert visible("one\r\ntwo\tthree\rfour\x1b[2J", multiline=True) == "one\ntwo\tthree\\rfour\\x1b[2J"
    assert visible("one\ntwo\tx") == "one\\ntwo\\tx"


def test_plain_text_is_unchanged():
    text = "req-007 — category=billing, « ünïcødé » 日本語 [-x-] {+y+}"
    assert visible(text) == visible(text, multiline=True) == text


@given(st.text())
def test_visible_text_holds_no_control_character_and_encodes(text):
    shown = visible(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in shown)
    shown.encode("utf-8")  # a lone surrogate would raise here


def test_term_is_rich_text_never_markup_or_emoji():
    from rich.console import Console

    console = Console(width=80, color_system=None, force_terminal=False, emoji=True)
    with console.capture() as capture:
        console.print(term("[bold red]inj[/bold red] :smile: \x1b]0;title\x07"))
    assert capture.get() == "[bold red]inj[/bold red] :smile: \\x1b]0;title\\x07\n"


def test_markup_escapes_tags_for_messages_built_as_markup():
    from rich.console import Console

    console = Console(width=80, color_system=None, force_terminal=False)
    with console.capture() as capture:
        console.print(f"[yellow]warning:[/] {markup('[bold]x[/bold]' + chr(0x1b))}")
    assert capture.get() == "warning: [bold]x[/bold]\\x1b\n"


def test_md_escapes_markdown_and_html_metacharacters():
    assert md("a|b <script>&amp; *em* `c` [l](u) ~~s~~ $x$ \\ \n") == (
        "a\\|b &lt;script&gt;&amp;amp; \\*em\\* \\`c\\` \\[l\\](u) \\~\\~s\\~\\~ \\$x\\$ \\\\ \\\\n"
    )


def test_md_leaves_underscores_inside_words_alone():
    assert md("format_compliance and snake_case_id") == "format_compliance and snake_case_id"
    assert md("_em_ and __strong__ and x_") == "\\_em\\_ and \\_\\_strong\\_\\_ and x\\_"


def test_md_code_spans_survive_backticks_and_pipes():
    assert md_code("req-007") == "`req-007`"
    assert md_code("a`b|c") == "``a`b\\|c``"
    assert md_code("`x`") == "`` `x` ``"
    assert md_code("a\nb") == "`a\\nb`"


def test_xml_text_is_valid_xml_1_0():
    hostile = "name\x00\x1b[2J\x0b\ud800\ufffe<&>\""
    element = ET.Element("case", name=xml(hostile))
    element.text = xml(hostile + "\nsecond line", multiline=True)
    parsed = ET.fromstring(ET.tostring(element, encoding="unicode"))
    assert parsed.get("name") == "name\\x00\\x1b[2J\\x0b\\ud800\\ufffe<&>\""
    assert parsed.text == "name\\x00\\x1b[2J\\x0b\\ud800\\ufffe<&>\"\nsecond line"


def test_clip_says_how_much_it_cut():
    assert clip("abcdef", 10) == "abcdef"
    assert clip("abcdef", 4) == "abcd … (2 more characters)"
