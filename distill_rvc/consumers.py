"""Where a model file will and will not load: RVC, Applio, the w-okada VC Client.

One rule set, from what each runtime does with a `.pth` (docs/consumers.md):
- RVC and w-okada build the class from `version`/`f0` and `config` (resblock type included)
  and load with `strict=False`: any RVC-format file loads correctly.
- Applio never reads `config[9]` and always builds ResBlock1: a ResBlock2 decoder would load
  silently wrong, so distill-rvc's ResBlock2 files carry a guard that makes Applio raise
  (checkpoint.APPLIO_GUARD_KEYS); a ResBlock2 file without it loads there wrong.
- Nothing loads the project format (no `config`: `KeyError: 'config'`), and training
  checkpoints / bare state dicts are not voice models to any of them.
`where_it_loads` returns plain data; `Loads.line()` is the sentence `inspect` and `teach` print.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .checkpoint import FORMAT_APPLIO, FORMAT_RVC, FORMAT_STUDENT_RVC
from .config import SynthConfig

CONSUMERS = ("RVC", "Applio", "w-okada")
_RVC_FORMATS = (FORMAT_RVC, FORMAT_APPLIO, FORMAT_STUDENT_RVC)


@dataclass(frozen=True)
class Loads:
    """`loads`: the consumers that load the file correctly; `refuses`: consumer -> why it
    refuses the file; `wrong`: consumer -> why it loads the file but computes wrong audio."""

    loads: tuple[str, ...]
    refuses: dict[str, str] = field(default_factory=dict)
    wrong: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        """E.g. `RVC, w-okada; Applio refuses it (ResBlock2 decoder)`."""
        parts = [", ".join(self.loads) if self.loads else "none"]
        for reason in dict.fromkeys(self.refuses.values()):
            who = [c for c, r in self.refuses.items() if r == reason]
            parts.append(f"{', '.join(who)} refuse{'s' if len(who) == 1 else ''} it ({reason})")
        for reason in dict.fromkeys(self.wrong.values()):
            who = [c for c, r in self.wrong.items() if r == reason]
            parts.append(f"{', '.join(who)} load{'s' if len(who) == 1 else ''} it WRONG ({reason})")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"loads": list(self.loads), "refuses": dict(self.refuses), "wrong": dict(self.wrong)}


def where_it_loads(fmt: str, config: SynthConfig, arch: dict | None = None, *,
                   applio_guard: bool = True) -> Loads:
    """Which runtimes load a file of format `fmt` (checkpoint.FORMAT_*) with this config and
    `arch` (per-layer widths, None if RVC's config says them all). `applio_guard`: the file
    carries the Applio guard (always, for ResBlock2 files distill-rvc writes)."""
    if fmt not in _RVC_FORMATS:
        why = ("distill-rvc project format, no RVC config" if fmt.startswith("distill-rvc")
               else "not an inference model")
        return Loads((), {c: why for c in CONSUMERS})
    if arch:
        return Loads((), {c: "per-layer widths RVC's config cannot express" for c in CONSUMERS})
    if config.resblock == "2":
        if applio_guard:
            return Loads(("RVC", "w-okada"), {"Applio": "ResBlock2 decoder"})
        return Loads(("RVC", "w-okada"), wrong={"Applio": "builds ResBlock1, this is a ResBlock2 decoder"})
    return Loads(CONSUMERS)
