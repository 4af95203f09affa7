"""`make lint`: every "decisions.md §N" the code and docs cite names a section of docs/decisions.md, every test
docs/security.md names exists, and nothing points outside the repository (a clone has no ../shared)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITATION = re.compile(r"decisions\.md §(\d+(?:\.\d+)?)")
SECTION = re.compile(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", re.MULTILINE)
OUTSIDE = re.compile(r"\.\./shared|privx-workflow-engine-api\.md|security-checklist\.md")


def sections() -> set[str]:
    return set(SECTION.findall((ROOT / "docs" / "decisions.md").read_text()))


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "src", "tests", "bench", "docs", "README.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / f for f in listed if f.endswith((".py", ".md", ".txt", ".html", ".toml"))]


def problems() -> list[str]:
    known = sections()
    found: list[str] = []
    for path in tracked_files():
        if not path.exists():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{number}"
            found += [f"{where}: decisions.md §{s} is not a section" for s in CITATION.findall(line) if s not in known]
            if OUTSIDE.search(line):
                found.append(f"{where}: points outside the repository")
    return found


TEST_FILE = re.compile(r"`((?:[\w/]+/)?test_\w+\.py)(?:::(test_\w+))?`")
TEST_NAME = re.compile(r"`(test_\w+)`")


def missing_tests() -> list[str]:
    """Tests docs/security.md names as the proof of a line, that are not in tests/."""
    tests = ROOT / "tests"
    every = "\n".join(p.read_text() for p in tests.rglob("test_*.py"))
    found: list[str] = []
    for number, line in enumerate((ROOT / "docs" / "security.md").read_text().splitlines(), 1):
        for file, name in TEST_FILE.findall(line):
            if not (tests / file).exists():
                found.append(f"docs/security.md:{number}: no tests/{file}")
            elif name and f"def {name}(" not in (tests / file).read_text():
                found.append(f"docs/security.md:{number}: no {name} in tests/{file}")
        found += [
            f"docs/security.md:{number}: no test {name}"
            for name in TEST_NAME.findall(line)
            if f"def {name}(" not in every
        ]
    return found


def main() -> int:
    found = problems() + missing_tests()
    for problem in found:
        print(problem)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
