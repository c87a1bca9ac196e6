"""JUnit XML for CI: one testcase per scenario of a gate, and inconclusive is never a pass.

Mapping (``docs/report.md``):

- ``pass``: a plain testcase.
- ``fail``: a ``<failure type="slo">`` whose message names the failing SLOs.
- ``inconclusive``: an ``<error type="inconclusive">`` (``type="crashed"`` when the run
  has no summary.json). Not ``<skipped>``: CI tools count skipped tests as not failing
  (GitHub, GitLab and Jenkins keep the build green), and a scenario that could not be
  judged has proven nothing; an error fails the build like the runner's exit code 2 does.
"""

from __future__ import annotations

import logging
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from probes.verdict import Outcome
from resilience.report.model import ScenarioResult
from resilience.score import gate_score

logger = logging.getLogger(__name__)

__all__ = ["SUITE_NAME", "write_junit"]

SUITE_NAME = "resilience-gate"
# characters XML 1.0 cannot carry (a log line with an ANSI escape would make the file unparseable)
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _listing(items: list[tuple[str, str]]) -> str:
    return "\n".join(f"{slo}: {reason}" if reason else slo for slo, reason in items)


def _testcase(suite: ET.Element, r: ScenarioResult) -> None:
    case = ET.SubElement(suite, "testcase", name=r.scenario, classname=f"resilience.{r.target}",
                         time=f"{r.duration_s or 0.0:.3f}")
    _properties(case, r)
    if r.regressed and r.outcome is not Outcome.FAIL:
        names = ", ".join(str(c["slo"]) for c in r.regressed)
        failure = ET.SubElement(case, "failure", type="regression", message=_clean(f"regressed against the "
                                                                                    f"baseline: {names}"))
        failure.text = _clean(_comparisons(r.regressed))
    elif r.baseline_unanswered and r.outcome is Outcome.PASS:
        error = ET.SubElement(case, "error", type="baseline", message=_clean(
            "passed, but no SLO could be compared with the baseline (not a pass of the regression check)"))
        error.text = _clean(_comparisons(r.comparisons))
    if r.outcome is Outcome.FAIL:
        names = ", ".join(slo for slo, _ in r.failing) or "see the report"
        count = len(r.failing)
        message = f"{count} SLO{'' if count == 1 else 's'} failed: {names}" if count else f"failed: {names}"
        body = _listing(r.failing)
        if r.inconclusive:
            body += "\n\nalso not judged:\n" + _listing(r.inconclusive)
        if r.regressed:
            body += "\n\nregressed against the baseline:\n" + _comparisons(r.regressed)
        failure = ET.SubElement(case, "failure", type="slo", message=_clean(message))
        failure.text = _clean(body)
    elif r.outcome is not Outcome.PASS:
        kind = "crashed" if r.crashed else "inconclusive"
        names = ", ".join(slo for slo, _ in r.inconclusive) or "see the report"
        if r.crashed:
            message = r.inconclusive[0][1] if r.inconclusive else "run crashed"
        else:
            message = f"inconclusive (not a pass): could not judge {names}"
        error = ET.SubElement(case, "error", type=kind, message=_clean(message))
        error.text = _clean(_listing(r.inconclusive))
    out = ET.SubElement(case, "system-out")
    out.text = _clean(f"report: {r.report_path}\nrun directory: {r.run_dir}\n"
                      f"outcome: {r.outcome.value}\nexit code: {r.exit_code}\n")


def _comparisons(items: list[dict[str, object]]) -> str:
    return "\n".join(f"{c['slo']}: {c['verdict']}: {c.get('reason') or ''}" for c in items)


def _properties(case: ET.Element, r: ScenarioResult) -> None:
    """``<properties>``: the resilience score and each SLO's comparison with the baseline."""
    props: list[tuple[str, str]] = []
    if r.score is not None:
        props.append(("resilience_score", f"{r.score:g}"))
    for c in r.comparisons:
        effect = c.get("effect_size")
        p = c.get("p_value")
        props.append((f"baseline.{c['slo']}", f"{c['verdict']}"
                      + (f"; p={p:.4g}" if isinstance(p, float) else "")
                      + (f"; cliffs_delta={effect:+.2f}" if isinstance(effect, float) else "")
                      + f"; median {c.get('median_baseline')} -> {c.get('median_candidate')}"
                      + f"; n={c.get('n_baseline')}/{c.get('n_candidate')}"))
    if props:
        el = ET.SubElement(case, "properties")
        for name, value in props:
            ET.SubElement(el, "property", name=name, value=_clean(value))


def write_junit(results: list[ScenarioResult], path: Path) -> Path:
    """Write the gate's JUnit XML: one testsuite ``resilience-gate``, one testcase per scenario.

    Each testcase is named after the scenario, with classname ``resilience.<target>``
    and time the run's duration; a failed scenario carries a ``<failure>``, an
    inconclusive or crashed one an ``<error>``, and ``<system-out>`` gives the report path.

    Args:
        results: the scenarios of the gate.
        path: the XML file to write (its directory is created).

    Returns:
        ``path``.

    Raises:
        OSError: the file could not be written.
    """
    path = Path(path)
    failures = sum(1 for r in results if r.outcome is Outcome.FAIL or r.regressed)
    errors = sum(1 for r in results if not r.regressed and (r.outcome not in (Outcome.PASS, Outcome.FAIL)
                                                             or (r.outcome is Outcome.PASS and r.baseline_unanswered)))
    total = f"{sum(r.duration_s or 0.0 for r in results):.3f}"
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": str(errors), "skipped": "0",
              "time": total}
    root = ET.Element("testsuites", {"name": SUITE_NAME, **counts})
    suite = ET.SubElement(root, "testsuite", {"name": SUITE_NAME, **counts,
                                              "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())})
    score = gate_score(r.score for r in results)
    if score is not None:
        ET.SubElement(ET.SubElement(suite, "properties"), "property", name="resilience_score", value=f"{score:g}")
    for r in results:
        _testcase(suite, r)
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    logger.info("JUnit XML for %d scenarios (%d failed, %d errors) written to %s", len(results), failures, errors,
                path)
    return path
