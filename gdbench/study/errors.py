"""The errors of the study layer that a user can fix, and the interrupt that stops a study.

The command line turns a :class:`StudyError` into one line on stderr and exit
status 2; the library raises it, naming the field or argument at fault.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["Interrupted", "SpecError", "StudyError"]


class StudyError(ValueError):
    """A problem the user can fix: a bad argument, location, storage or server.

    The message names the field or argument at fault and what is accepted.
    """


class SpecError(StudyError):
    """A study spec that cannot run: names the file, the field and what is accepted.

    Attributes:
        path: the spec file.
        field: the dotted path of the offending field (``search.beta_1.low``).
    """

    def __init__(self, path: Path | str, field: str, message: str) -> None:
        self.path = Path(path)
        self.field = field
        super().__init__(f"{path}: {field}: {message}")


class Interrupted(KeyboardInterrupt):
    """A study stopped by a signal (SIGINT, SIGTERM): its unfinished trials are queued again.

    Args:
        signal_name: the signal's name, as the trials' failure reason gives it.
    """

    def __init__(self, signal_name: str = "SIGINT") -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
