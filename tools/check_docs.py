"""`make lint`: every "decisions.md §N" the code and docs cite names a section of docs/decisions.md, and nothing
points outside the repository (a clone has no ../shared)."""

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


def main() -> int:
    found = problems()
    for problem in found:
        print(problem)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
