"""User-facing errors: each carries one line that names the file or setting and the problem.

The entry points print these without a traceback (unless HYDRA_FULL_ERROR=1) and exit non-zero.
"""


class TranslateError(Exception):
    """A problem the user can fix: bad input, bad configuration, unreadable checkpoint."""


class DataError(TranslateError):
    """Missing, empty or unreadable data."""


class ConfigError(TranslateError):
    """An invalid combination of settings."""


class CheckpointError(TranslateError):
    """A checkpoint that cannot be read or does not fit the configuration."""


class OutputError(TranslateError):
    """An output that cannot be written: a full disk, a read-only folder, a missing permission."""


class DiskFullError(OutputError):
    """No space left on the disk, or the quota exceeded: every later write would fail too, so batch work stops."""


class NonFiniteLossError(TranslateError):
    """Training produced NaN or infinite losses."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none (``MemoryError()``)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise a one-line ValueError when a string option is not one of its choices (constructors raise it;
    ``translate.config.compose.build`` reports it against the config key)."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(choices)}")
