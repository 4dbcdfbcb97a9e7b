"""Render a verdict as JUnit XML: one test case per gate and per race row.

CI systems show each failure with its message (the measured value and the
limit); a skipped gate is a skipped test case. Nothing is written here.
"""
import xml.etree.ElementTree as ET

from racelab.reports.gates import FAIL, SKIP, format_value


def render_junit(verdict):
    """Return the JUnit XML document (a string) for ``verdict``."""
    root = ET.Element("testsuites", name="racelab")
    gates = _suite(root, "racelab.gates")
    for r in verdict.gates:
        case = ET.SubElement(gates, "testcase", classname="racelab.gates", name=r.expression, time="0")
        if r.status == FAIL:
            message = (f"measured {format_value(r.measured, r.gate.unit)}, "
                       f"limit {format_value(r.limit, r.gate.unit)}")
            failure = ET.SubElement(case, "failure", message=message, type="GateBreach")
            failure.text = f"{r.message()}\n{r.gate.meaning}"
        elif r.status == SKIP:
            ET.SubElement(case, "skipped", message=f"{r.source or 'no data'}: {r.gate.meaning}")
        else:
            ET.SubElement(case, "system-out").text = r.message()
    races = _suite(root, "racelab.races")
    for r in verdict.races:
        case = ET.SubElement(races, "testcase", classname=f"racelab.races.{r.mode}", name=f"{r.race} [{r.mode}]",
                             time="0")
        if r.status == FAIL:
            measured = (f"{r.anomalies} anomalies" if r.mode == "fixed"
                        else f"reproduced {format_value(r.reproduced_pct, '%')}")
            failure = ET.SubElement(case, "failure", message=f"measured {measured}, limit {r.rule}",
                                    type="RaceBreach")
            failure.text = r.message() + (f"\nexample: {r.example}" if r.example else "")
        elif r.status == SKIP:
            ET.SubElement(case, "skipped", message=r.skip_reason or "no run")
    for suite in (gates, races):
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
        suite.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
        suite.set("errors", "0")
    for key in ("tests", "failures", "skipped", "errors"):
        root.set(key, str(sum(int(s.get(key)) for s in (gates, races))))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(root, name):
    return ET.SubElement(root, "testsuite", name=name)
