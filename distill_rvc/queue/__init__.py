"""`distill-rvc teach-many`: a queue of voices distilled unattended, resumable, with one summary table.

    voices.py     the voice list: VOICES.toml ([defaults] + [[voice]]) or a folder of <name>.pth + <name>/
    state.py      OUT/queue.json (each voice pending, running, done or failed) and the lock on OUT
    run.py        the command: TeachManySettings and teach_many(source, out, settings); SIGTERM stops it
    summary.py    the closing table: format_teach_many, OUT/summary.md and summary.json

From Python, `teach_many(...)` is the whole command. Not here: distilling one voice
(distill/teach.py), which each voice's turn calls with resume.
"""
from .run import QueueStopped, TeachManyResult, TeachManySettings, teach_many
from .summary import format_teach_many
from .voices import Voice, read_voices

__all__ = ["QueueStopped", "TeachManyResult", "TeachManySettings", "Voice", "format_teach_many", "read_voices",
           "teach_many"]
