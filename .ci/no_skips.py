"""Fail unless a junit XML report ran tests and skipped none: a skip there hides a test
that never ran.

    python .ci/no_skips.py REPORT.xml "label of the run"
"""
import sys
import xml.etree.ElementTree as ET

report, label = sys.argv[1], sys.argv[2]
suite = ET.parse(report).getroot()
suites = [suite] if suite.tag == "testsuite" else list(suite)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
tests = sum(int(s.get("tests", 0)) for s in suites)
print(f"{label} run: {tests} tests, {skipped} skipped")
if tests == 0 or skipped:
    sys.exit(f"no test may be skipped on {label}")
