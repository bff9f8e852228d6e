"""The exceptions digitlab raises for problems a user can fix.

Library code raises these; the CLI prints them as one line and exits 1. Anything else is a bug.
"""


class DigitlabError(Exception):
    """Base class: a problem with the user's input, files or environment, with a clear message."""


class DataError(DigitlabError, ValueError):
    """A data file is malformed, has the wrong checksum, or a data set is unknown."""


class FetchError(DigitlabError, OSError):
    """A data file could not be found locally nor downloaded from any mirror."""

    # A message of several lines (one a mirror) keeps them here: a newline inside a line, from a
    # file or mirror name, is escaped where it is printed, so that it cannot print a line of its own.
    lines: tuple[str, ...] = ()


class ConfigError(DigitlabError, ValueError):
    """A run configuration, preset name or option value is invalid."""


class RunError(DigitlabError, OSError):
    """A run folder or model file is missing or unreadable."""


class TrainingDiverged(DigitlabError):
    """The training loss became NaN or infinite (usually a learning rate too large)."""


class ImageError(DigitlabError, ValueError):
    """An image file cannot be read or holds no digit."""


class Interrupted(DigitlabError):
    """Training was stopped with Ctrl-C; the run can be resumed (the command exits 130)."""


class ServeError(DigitlabError, OSError):
    """The server cannot start: its address is taken or not one of this machine's."""


class WriteError(DigitlabError, OSError):
    """A result could not be written (disk full, read-only or missing folder); what was done is kept."""


class ClusterError(DigitlabError, RuntimeError):
    """A Ray cluster cannot be used: Ray is not installed, the address is wrong or unreachable."""
