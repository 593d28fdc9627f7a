"""JUnit XML: one test case per gate, so CI systems show gates as tests.

FAIL is a <failure>; INCONCLUSIVE is a <failure> too when ``on_inconclusive`` is
``fail`` (CI stays strict) and a <skipped> otherwise; SKIPPED gates are <skipped>.
Text from the run (its name, segment values) goes through :func:`xml`: ElementTree escapes
markup but writes the control characters XML 1.0 forbids, which no parser reads back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

from replay.privacy import describe
from replay.reports import format as fmt
from replay.reports import register_renderer
from replay.reports.escape import xml

if TYPE_CHECKING:  # for the annotations only
    from replay.evaluate import Evaluation


@register_renderer("junit", suffix=".xml", option="--report-junit",
                   help="Write a JUnit XML file (one test case per gate) here.", order=3)  # fmt: skip
def render_junit(evaluation: Evaluation) -> str:
    decision = evaluation.decision
    run_name = xml(evaluation.run.name)
    suite = ET.Element("testsuite", name=f"replay.{run_name}")
    failures = skipped = 0
    for result in decision.results:
        cells = fmt.gate_cells(result)
        case = ET.SubElement(suite, "testcase", classname=f"replay.gates.{run_name}", name=xml(cells["gate"]))
        detail = xml(f"{cells['gate']}: baseline {cells['baseline']}, candidate {cells['candidate']}, "
                  f"delta {cells['delta']}, 95% CI {cells['ci']}, threshold {cells['threshold']}, n {cells['n']}")  # fmt: skip
        if result.note:
            detail += f"; {xml(result.note)}"
        strict = result.status == "INCONCLUSIVE" and decision.on_inconclusive == "fail"
        if result.status == "FAIL" or strict:
            failures += 1
            ET.SubElement(case, "failure", message=f"{result.status}: {detail}", type=result.status).text = detail
        elif result.status in ("INCONCLUSIVE", "SKIPPED"):
            skipped += 1
            ET.SubElement(case, "skipped", message=f"{result.status}: {detail}")
        else:
            ET.SubElement(case, "system-out").text = detail
    suite.set("tests", str(len(decision.results)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    properties = ET.Element("properties")
    redaction = evaluation.run.scenario.get("redact")
    privacy = [("redaction", describe(redaction))] if redaction else []
    for name, value in (("run_id", evaluation.run.id), ("verdict", decision.verdict), *_judge_properties(evaluation),
                        *_mix_properties(evaluation), *privacy):  # fmt: skip
        ET.SubElement(properties, "property", name=xml(name), value=xml(value))
    suite.insert(0, properties)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def _judge_properties(evaluation: Evaluation) -> list[tuple[str, str]]:
    """The judge's model, win rate and warnings as suite properties (a run without a judge has none)."""
    judge = evaluation.judge
    if judge is None:
        return []
    win = judge.metric.candidate
    rate = "" if win.value is None else f"{win.value:.4f}"
    return [("judge_model", judge.model), ("judge_win_rate", rate), ("judge_judged", str(judge.metric.n)),
            *[("judge_warning", warning) for warning in judge.warnings]]  # fmt: skip


def _mix_properties(evaluation: Evaluation) -> list[tuple[str, str]]:
    """The sample's traffic mix as suite properties: its summary lines, then one property per value
    (``mix.category.billing`` = ``log 40.0% (400), sample 38.0% (38)``); none for a plain sample."""
    mix = evaluation.mix
    if mix is None:
        return []
    properties = [("mix", line) for line in fmt.mix_lines(mix)]
    for key, rows in fmt.mix_tables(mix):
        properties += [(f"mix.{key}.{row['value']}", f"log {row['log_share']} ({row['log']}), sample {row['sample_share']}"
                        f" ({row['sample']})") for row in rows]  # fmt: skip
    return properties
