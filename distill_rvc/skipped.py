"""What a run over many files passed over: those an earlier run had done, and those it could not use.

    Skipped                                     [(name, reason)]: what prepare, import-rvc-logs, convert skipped
    summary(headline, skipped, what, resumed)   the text their format_* functions print

A run over a folder skips what it cannot use and goes on; the result says what was skipped and
why, so the user can fix those files and run it again, and a re-run says how much was already
done. Not here: the warnings logged as files are skipped (each command logs its own).
"""
from __future__ import annotations

Skipped = list[tuple[str, str]]


def summary(headline: str, skipped: Skipped, what: str, resumed: tuple[int, str] = (0, "")) -> str:
    """`headline`; "resumed: N <resumed[1]>" when an earlier run had done N; then "skipped N <what>:"
    and one indented "name: reason" line for each skipped item (nothing when none was)."""
    lines = [headline]
    if resumed[0]:
        lines.append(f"resumed: {resumed[0]} {resumed[1]}")
    if skipped:
        lines += [f"skipped {len(skipped)} {what}:", *(f"  {name}: {reason}" for name, reason in skipped)]
    return "\n".join(lines)
