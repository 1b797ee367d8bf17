"""Print mutmut's verdicts per module: killed, survived, and the score with and without the
survivors that only change message text (listed, so a reader can check that claim)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

# Verdicts that say nothing about the tests: excluded from the score.
NOT_SCORED = {"skipped", "caught by type check", "not checked", "check was interrupted by user"}
KILLED = {"killed", "timeout", "segfault"}
STRING = re.compile(r"""(?:b|f|rb|br)?("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")


def text_only(diff: str) -> bool:
    """Does the mutant change nothing but the text inside string literals?"""
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-") and line[1:2] != "-"]
    added = [line[1:] for line in diff.splitlines() if line.startswith("+") and line[1:2] != "+"]
    if not removed or len(removed) != len(added):
        return False
    return all(
        STRING.sub('""', a) == STRING.sub('""', b) and a != b
        for a, b in zip(removed, added, strict=True)
    )


def main() -> int:
    metas = sorted(Path("mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutmut results under ./mutants: run scripts/mutation.sh", file=sys.stderr)
        return 1
    rows: list[tuple[str, Counter[str]]] = []
    text_survivors: list[str] = []
    other_survivors: list[str] = []
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts: Counter[str] = Counter()
        for name, code in sorted(codes.items()):
            status = status_by_exit_code[code]
            if status in NOT_SCORED:
                counts["not scored"] += 1
            elif status in KILLED:
                counts["killed"] += 1
            else:
                diff = subprocess.run(
                    [sys.executable, "-m", "mutmut", "show", name],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                if text_only(diff):
                    counts["text"] += 1
                    text_survivors.append(f"{name} ({status})\n{_changed(diff)}")
                else:
                    counts["survived"] += 1
                    other_survivors.append(f"{name} ({status})\n{_changed(diff)}")
        rows.append((str(meta.relative_to("mutants"))[: -len(".meta")], counts))
    total: Counter[str] = Counter()
    for _, counts in rows:
        total.update(counts)
    if other_survivors:
        print("== surviving mutants that change behaviour")
        print("\n".join(other_survivors))
    if text_survivors:
        print("== surviving mutants that change only message text (not scored)")
        print("\n".join(text_survivors))
    print("== mutation score per module (killed / killed+survived; text-only survivors apart)")
    header = f"{'module':42} {'killed':>6} {'survived':>8} {'text':>5} {'score':>7} {'all':>7}"
    print(header)
    for module, counts in [*rows, ("all", total)]:
        print(
            f"{module:42} {counts['killed']:6} {counts['survived']:8} {counts['text']:5} "
            f"{_score(counts, False):>7} {_score(counts, True):>7}"
        )
    return 0


def _changed(diff: str) -> str:
    return "\n".join(
        f"    {line}"
        for line in diff.splitlines()
        if line[:1] in "+-" and line[:3] not in ("---", "+++")
    )


def _score(counts: Counter[str], with_text: bool) -> str:
    tested = counts["killed"] + counts["survived"] + (counts["text"] if with_text else 0)
    return f"{100 * counts['killed'] / tested:.1f}%" if tested else "-"


if __name__ == "__main__":
    sys.exit(main())
