"""Exceptions raised for bad input and failed computations.

Every message names the dotted key, what was expected and what was found, so that the
command line can print it as a single line (``model.temperature: must be > 0, got -1``).
Several problems found at once are joined with ``"; "`` on that one line.

Both exceptions cross process boundaries unchanged (a process pool or Dask worker pickles
the exception and the parent unpickles it): ``__reduce__`` rebuilds them from their own
fields, because the default pickling calls ``cls(*args)`` with the formatted message only.
"""


class ConfigError(ValueError):
    """A run file or API argument is malformed or inconsistent.

    Parameters
    ----------
    key : str
        Dotted key (``"model.N"``), argument name or path the problem is about; may be "".
    message : str
        What was expected and what was found.

    Attributes
    ----------
    problems : tuple of (key, message)
        Every problem reported by this error (one unless built with ``combine``).
    """

    def __init__(self, key, message):
        message = " ".join(str(message).splitlines())  # the command line prints one line
        self.key = key
        self.message = message
        self.problems = ((key, message),)
        super().__init__(f"{key}: {message}" if key else message)

    @classmethod
    def combine(cls, problems):
        """One error reporting every (key, message) of ``problems`` (duplicates dropped)."""
        unique = list(dict.fromkeys(problems))
        first_key, first_message = unique[0]
        error = cls(first_key, first_message)
        if len(unique) > 1:
            text = "; ".join(f"{k}: {m}" if k else m for k, m in unique)
            error.args = (text,)
            error.problems = tuple(unique)
        return error

    def __reduce__(self):
        return _rebuild_config_error, (self.problems,)

    def __str__(self):
        return str(self.args[0]) if self.args else ""


def _rebuild_config_error(problems):
    return ConfigError.combine(problems)


class ResultFileError(ValueError):
    """A result file exists but has another layout, schema or run configuration."""
