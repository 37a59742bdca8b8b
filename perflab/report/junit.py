"""JUnit XML for CI systems (Jenkins, GitLab, GitHub Actions test reporters).

One ``<testsuite>`` per call with ``<testcase classname=… name=…>``; CI tools split a classname
at its dots into packages, so each part of one (:func:`classname`) keeps none of its own (a
serial ``127.0.0.1:5042`` is written ``127_0_0_1:5042``). A failed case carries
``<failure message=… type=…>`` with the numbers as its text, a case that could not be judged a
``<skipped message=…>``. Pure: builds the XML text; the caller writes it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class JUnitCase:
    classname: str
    name: str
    failure: str | None = None  # one-line message; the case failed
    failure_text: str | None = None  # the details (numbers, method)
    failure_type: str = "regression"
    skipped: str | None = None  # why it was not judged
    system_out: str | None = None
    time_s: float = 0.0


def classname(*parts: str) -> str:
    """A testcase classname from its parts (``compare``, a scenario, a serial): joined by dots, the
    dots inside a part made ``_``, so that a CI tool (Jenkins, GitLab, GitHub's test reporters)
    reads each part as one name, never packages ``127``, ``0``, ``0``, ``1:5042``. Empty parts are left out."""
    return ".".join(p.replace(".", "_") for p in parts if p)


def _clean(text: str) -> str:
    """XML 1.0 cannot carry most control characters: replace them."""
    return "".join(c if c in "\t\n\r" or ord(c) >= 0x20 else "\ufffd" for c in text)


def junit_xml(suite: str, cases: Sequence[JUnitCase], *, properties: Sequence[tuple[str, str]] = ()) -> str:
    failures = sum(1 for c in cases if c.failure is not None)
    skipped = sum(1 for c in cases if c.failure is None and c.skipped is not None)
    root = ET.Element("testsuites", name=_clean(suite), tests=str(len(cases)), failures=str(failures),
                      errors="0", skipped=str(skipped))
    ts = ET.SubElement(root, "testsuite", name=_clean(suite), tests=str(len(cases)), failures=str(failures),
                       errors="0", skipped=str(skipped), time=f"{sum(c.time_s for c in cases):.3f}")
    if properties:
        props = ET.SubElement(ts, "properties")
        for k, v in properties:
            ET.SubElement(props, "property", name=_clean(k), value=_clean(v))
    for c in cases:
        tc = ET.SubElement(ts, "testcase", classname=_clean(c.classname), name=_clean(c.name), time=f"{c.time_s:.3f}")
        if c.failure is not None:
            f = ET.SubElement(tc, "failure", message=_clean(c.failure), type=_clean(c.failure_type))
            f.text = _clean(c.failure_text or c.failure)
        elif c.skipped is not None:
            ET.SubElement(tc, "skipped", message=_clean(c.skipped))
        if c.system_out:
            ET.SubElement(tc, "system-out").text = _clean(c.system_out)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
