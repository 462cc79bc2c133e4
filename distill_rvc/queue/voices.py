"""The list of voices a queue distils: a VOICES.toml file, or a folder of teachers with their data.

    read_voices(source, overrides) -> list[Voice]     parsed and checked, in the queue's order

VOICES.toml:

    [defaults]                      # any `teach` option, for every voice
    recipe = "tiny"
    steps = 60
    batch_size = 4

    [[voice]]
    name = "alto"                   # the run folder OUT/alto/ [default: the teacher's stem]
    teacher = "alto.pth"            # relative paths are relative to the toml file
    data = "alto-data"
    key = 2                         # this voice's own options win over [defaults]

The teach options are TEACH_KEYS (the `teach` command's, with underscores). A folder DIR holds
`<name>.pth` and `<name>/` (its prepared dataset) per voice, in name order.

The file's mistakes (bad TOML, an unknown key, a value of the wrong type, an unknown recipe, a
name used twice) are refused here in one line naming the voice and the key: the user fixes them
before an unattended run starts. A teacher or dataset that is missing or broken is not checked
here: `teach` finds it when the voice's turn comes, and the queue records that voice as failed.
Not here: running the voices (run.py) or their progress (state.py).
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..distill.recipes import load_recipe
from ..distill.teach import TeachSettings
from ..errors import DistillRVCError

# toml key -> (TeachSettings field, accepted types, what to write)
TEACH_KEYS: dict[str, tuple[str, tuple[type, ...], str]] = {
    "recipe": ("recipe", (str,), "a shipped recipe's name or a recipe .toml path"),
    "steps": ("steps", (int,), "a whole number of steps, at least 1"),
    "batch_size": ("batch_size", (int,), "a whole number, at least 1"),
    "key": ("key", (int, float), "semitones, a number"),
    "device": ("device", (str,), '"cpu", "cuda", "cuda:N" or "auto"'),
    "check_budget": ("check_budget", (bool,), "true or false"),
    "checkpoint_every": ("checkpoint_every", (str, int), 'steps (500) or a time ("10m")'),
}
VOICE_KEYS = ("name", "teacher", "data")
RESERVED = {"queue.json", "summary.md", "summary.json", "queue.lock"}  # the queue's own files in OUT
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")


@dataclass(frozen=True)
class Voice:
    """One voice of the queue: what `teach` gets for it."""

    name: str  # its run folder OUT/<name>/
    teacher: Path
    data: Path
    settings: TeachSettings  # the teach options: [defaults], the command line, then the voice's own
    steps: int  # the steps it trains in all (the recipe's, or the steps option)

    def spec(self) -> dict[str, Any]:
        """What the voice is, as plain data (queue.json compares it on a rerun)."""
        s = dataclasses.asdict(self.settings)
        s["recipe"] = str(s["recipe"])
        for k in ("resume", "progress"):  # the queue's own business, not the voice's
            s.pop(k)
        return {"teacher": str(self.teacher), "data": str(self.data), "settings": s, "steps": self.steps}


def read_voices(source: str | Path, overrides: dict[str, Any] | None = None) -> list[Voice]:
    """The voices of a VOICES.toml file or of a folder (module docstring). `overrides` (teach
    options from the command line, TEACH_KEYS names) replace [defaults]; a voice's own keys win."""
    source = Path(source).absolute()  # queue.json records absolute paths: a rerun from elsewhere matches
    if source.is_dir():
        return _folder(source, overrides or {})
    if not source.is_file():
        raise DistillRVCError(f"{source}: no such file or folder (give a VOICES.toml or a folder of <name>.pth "
                              "and <name>/ datasets)")
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DistillRVCError(f"{source}: not valid TOML ({e})") from None
    unknown = sorted(set(data) - {"defaults", "voice"})
    if unknown:
        raise DistillRVCError(f"{source}: unknown table or key {unknown[0]!r} (expected [defaults] and [[voice]])")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise DistillRVCError(f"{source}: `defaults` must be a [defaults] table")
    tables = data.get("voice", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables) or not tables:
        raise DistillRVCError(f"{source}: no voices: add one [[voice]] table per voice, with teacher and data")
    base = _options(defaults, source, "[defaults]", source.parent, allowed=())
    voices = [_voice(t, i, source, {**base, **(overrides or {})}) for i, t in enumerate(tables, 1)]
    _unique(voices, source)
    return voices


def _voice(table: dict[str, Any], index: int, source: Path, options: dict[str, Any]) -> Voice:
    where = f"voice {table['name']!r}" if isinstance(table.get("name"), str) else f"voice #{index}"
    own = _options(table, source, where, source.parent, allowed=VOICE_KEYS)
    for key in ("teacher", "data"):
        if key not in table:
            raise DistillRVCError(f"{source}: {where}: missing `{key}`")
        if not isinstance(table[key], str) or not table[key]:
            raise DistillRVCError(f"{source}: {where}: `{key}` must be a path (a string)")
    teacher = source.parent / Path(table["teacher"]).expanduser()
    name = table.get("name", teacher.stem)
    if not isinstance(name, str):
        raise DistillRVCError(f"{source}: {where}: `name` must be a string")
    return _make(name, teacher, source.parent / Path(table["data"]).expanduser(), {**options, **own},
                 f"{source}: {where}")


def _folder(folder: Path, overrides: dict[str, Any]) -> list[Voice]:
    teachers = sorted(p for p in folder.glob("*.pth") if p.is_file())
    if not teachers:
        raise DistillRVCError(f"{folder}: no <name>.pth teachers in this folder (each beside its <name>/ dataset)")
    voices = [_make(p.stem, p, folder / p.stem, dict(overrides), f"{folder}: voice {p.stem!r}") for p in teachers]
    _unique(voices, folder)
    return voices


def _options(table: dict[str, Any], source: Path, where: str, base: Path, allowed: tuple[str, ...]) -> dict:
    """The teach options of a [defaults] or [[voice]] table, type-checked; paths resolved."""
    options = {}
    for key, value in table.items():
        if key in allowed:
            continue
        if key not in TEACH_KEYS:
            known = ", ".join((*allowed, *TEACH_KEYS))
            raise DistillRVCError(f"{source}: {where}: unknown key {key!r} (known: {known})")
        _, types, expected = TEACH_KEYS[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise DistillRVCError(f"{source}: {where}: `{key}` must be {expected}, got {value!r}")
        if key == "recipe" and (value.endswith(".toml") or "/" in value):
            value = str(base / Path(value).expanduser())
        options[key] = value
    return options


def _make(name: str, teacher: Path, data: Path, options: dict[str, Any], where: str) -> Voice:
    if not _NAME.match(name) or name in RESERVED:
        raise DistillRVCError(f"{where}: `name` {name!r} cannot be a folder name: use letters, digits, -, _ and .")
    for key in ("steps", "batch_size"):
        if key in options and options[key] < 1:
            raise DistillRVCError(f"{where}: `{key}` must be at least 1, got {options[key]}")
    if "checkpoint_every" in options:
        options["checkpoint_every"] = str(options["checkpoint_every"])
    if "key" in options:
        options["key"] = float(options["key"])
    settings = TeachSettings(**{TEACH_KEYS[k][0]: v for k, v in options.items()})
    try:
        settings.check()
        recipe = load_recipe(settings.recipe)
    except DistillRVCError as e:
        raise DistillRVCError(f"{where}: {e}") from None
    return Voice(name=name, teacher=teacher, data=data, settings=settings,
                 steps=settings.steps if settings.steps is not None else recipe.train.steps)


def _unique(voices: list[Voice], source: Path) -> None:
    seen: set[str] = set()
    for v in voices:
        if v.name in seen:
            raise DistillRVCError(f"{source}: two voices are named {v.name!r}: give each its own `name`")
        seen.add(v.name)
