"""Exceptions and warnings raised by perceptiq.

Every error that a user can cause (a bad file, a bad column, data on which a statistic is undefined)
is a :class:`PerceptiqError`, whose message is one line that names the file or the value at fault.
The CLI prints that line and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations

__all__ = [
    "PerceptiqError",
    "InputError",
    "DataFileError",
    "UndefinedStatisticError",
    "FitError",
    "RegistryError",
    "OptionError",
    "PerceptiqWarning",
    "FitWarning",
]


class PerceptiqError(Exception):
    """Base class of all perceptiq errors; ``str(err)`` is a one-line reason."""


class InputError(PerceptiqError, ValueError):
    """Input values or arrays are unusable (NaN, wrong shape, mismatched ids, ...)."""


class DataFileError(InputError):
    """A file cannot be read or lacks what is needed; the message names the file."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UndefinedStatisticError(InputError):
    """A statistic is undefined on the given data (constant input, too few items).

    ``side`` names the input at fault when known ("predictions" or "ground truth", else None), so
    that a caller which read the inputs from files can name the file.
    """

    def __init__(self, message: str, *, side: str | None = None) -> None:
        super().__init__(message)
        self.side = side


class FitError(PerceptiqError, RuntimeError):
    """A nonlinear mapping could not be fitted."""


class RegistryError(PerceptiqError, KeyError):
    """Unknown or duplicate name in a registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it a plain line
        return str(self.args[0]) if self.args else ""


class OptionError(InputError, TypeError):
    """A keyword option that the named metric, model or protocol does not accept.

    Also a :class:`TypeError`, as Python raises for an unexpected keyword argument.
    """


class PerceptiqWarning(UserWarning):
    """Base class of perceptiq warnings."""


class FitWarning(PerceptiqWarning):
    """A fit converged to something suspicious (decreasing curve) or fell back to another mapping."""
