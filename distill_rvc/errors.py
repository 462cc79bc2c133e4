"""The one exception type for problems a user can fix.

Core code raises `DistillRVCError` with a message that says what is wrong and what to do;
the CLI prints it as one line and exits with code 2. Anything else is a bug and keeps its
traceback.
"""


class DistillRVCError(Exception):
    """A user-facing error: bad input file, bad option, not enough memory, ..."""
