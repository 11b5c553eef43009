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


class NonFiniteLossError(TranslateError):
    """Training produced NaN or infinite losses."""
