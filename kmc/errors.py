"""Exceptions raised for bad input and failed computations.

Every message names the dotted key, what was expected and what was found, so that the
command line can print it as a single line (``model.temperature: must be > 0, got -1``).
"""


class ConfigError(ValueError):
    """A run file or API argument is malformed or inconsistent."""

    def __init__(self, key, message):
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)


class ResultFileError(ValueError):
    """A result file exists but has another layout, schema or run configuration."""
