"""Exceptions raised for bad user input or failed solves.

The CLI catches :class:`DagsimError` and prints its message (no traceback); everything else is a bug.
"""

from __future__ import annotations


class DagsimError(ValueError):
    """Base class of every error the CLI reports to the user as a one-paragraph message."""


class ValidationError(DagsimError):
    """A DAG/task file or an argument is invalid; the message names the offending node or field."""


class SolverError(DagsimError):
    """A numerical solve did not reach an optimal/converged status (never returned silently)."""


class InfeasibleError(SolverError):
    """The constraints admit no answer distribution."""


class DomainError(DagsimError):
    """A parameter (beta, tau, order, ...) lies outside the domain where an objective/solver is defined."""


class UnknownNameError(ValidationError, DomainError):
    """A name (algorithm, estimator, baseline, consensus kind, ...) that its registry does not hold.

    One type for every registry (``dagsim.registry.lookup``): it is a :class:`ValidationError` (a bad
    argument naming its field) and a :class:`DomainError` (outside the registered choices), so callers that
    catch either keep working; the CLI reports it like any :class:`DagsimError` (exit 2).
    """
