"""The two ways a parity run can fail before any number is compared."""

from __future__ import annotations

__all__ = ["InputError", "OracleError", "OracleUnavailable"]


class InputError(ValueError):
    """Bad input: an unknown scenario, a malformed scenario file, an unreadable record, a mismatch.

    The message is one line that names the culprit; ``msadam parity`` reports it and exits 2.
    """


class OracleError(RuntimeError):
    """MindSpore was imported but could not run the scenario (its last error line is the message)."""


class OracleUnavailable(OracleError):
    """MindSpore is not installed, or does not import, in the oracle subprocess."""
