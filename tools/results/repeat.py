"""How often each test passed over repeated runs of a suite (``make test-repeat``): JUnit XML in, a table out.

A test that fails at random teaches people to rerun instead of read; counting passes over N runs on fresh labs
is how such a test is found. ``python -m multi6lab.results.repeat RUN.xml ...`` prints one row per test, worst
first, writes ``summary.md`` and ``summary.json`` beside the reports, and exits 1 if any test ever failed.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Tally:
    runs: int = 0
    passed: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    first_failure: dict[str, str] = field(default_factory=dict)

    def add(self, xml_text: str) -> None:
        """One run's JUnit XML (pytest's ``--junitxml``)."""
        self.runs += 1
        for case in ET.fromstring(xml_text).iter("testcase"):
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            bad = case.find("failure")
            if bad is None:
                bad = case.find("error")
            if bad is not None:
                self.failed[name] += 1
                message = (bad.get("message") or "").strip()
                self.first_failure.setdefault(name, message.splitlines()[0][:200] if message else "")
            elif case.find("skipped") is not None:
                self.skipped[name] += 1
            else:
                self.passed[name] += 1

    @property
    def tests(self) -> list[str]:
        names = set(self.passed) | set(self.failed) | set(self.skipped)
        return sorted(names, key=lambda n: (-self.failed[n], n))

    def markdown(self) -> str:
        lines = [f"{self.runs} runs; {sum(1 for n in self.tests if self.failed[n])} of {len(self.tests)} tests "
                 "failed at least once", "", "| test | passed | failed | skipped | first failure |",
                 "|---|---|---|---|---|"]
        lines += [f"| {n} | {self.passed[n]}/{self.runs} | {self.failed[n]} | {self.skipped[n]} | "
                  f"{self.first_failure.get(n, '')} |" for n in self.tests]
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict[str, object]:
        return {"runs": self.runs, "tests": {n: {"passed": self.passed[n], "failed": self.failed[n],
                                                 "skipped": self.skipped[n]} for n in self.tests}}


def main(argv: list[str] | None = None) -> int:
    paths = [Path(a) for a in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print("usage: python -m multi6lab.results.repeat RUN.xml [RUN.xml ...]", file=sys.stderr)
        return 2
    tally, unreadable = Tally(), 0
    for p in paths:
        try:
            tally.add(p.read_text())
        except (OSError, ET.ParseError) as exc:
            print(f"{p}: not a JUnit report ({exc}); that run is counted as failed", file=sys.stderr)
            unreadable += 1
    text = tally.markdown()
    out = paths[0].parent
    (out / "summary.md").write_text(text)
    (out / "summary.json").write_text(json.dumps(tally.as_json(), indent=1) + "\n")
    print(text, end="")
    return 1 if any(tally.failed.values()) or unreadable else 0


if __name__ == "__main__":
    sys.exit(main())
