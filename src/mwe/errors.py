"""One exception tree, so the CLI can map every failure to a documented exit code.

    MweError (1)
    ├── SpecError (2)                 a threat-model file is missing, unreadable or invalid
    │   └── UnknownThreatModel (2)    a name that matches no shipped or local spec
    ├── UsageError (2)                an option value that cannot work (bad model name, n < 1)
    ├── ShortfallError (3)            the build kept fewer items than asked (raised only on request)
    ├── ProviderError (4)             a model could not be reached or answered badly
    │   ├── MissingDependency (4)     an optional extra is not installed
    │   └── AuthError (4)             a key was missing or refused: the run stops before spending more
    ├── StoreError (5)                a file or folder cannot be written or read (named in the message)
    ├── CostLimitReached (6)          --max-cost would be passed: nothing published, answers cached
    └── JudgeNotCalibrated (7)        the spec's judge.min_kappa is not met by the stored calibration

Ctrl-C is not an MweError: the CLI turns KeyboardInterrupt into exit 130 after the
store has removed its temporary directory.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "CostLimitReached",
    "JudgeNotCalibrated",
    "MissingDependency",
    "MweError",
    "ProviderError",
    "ShortfallError",
    "SpecError",
    "StoreError",
    "UnknownThreatModel",
    "UsageError",
]


class MweError(Exception):
    """Base of every error mwe raises on purpose; `exit_code` is what the CLI returns."""

    exit_code = 1


class SpecError(MweError):
    """Names the file and the field path so the user can fix the spec without guessing."""

    exit_code = 2

    def __init__(self, path: str, message: str, field: str | None = None) -> None:
        self.path = path
        self.field = field
        self.message = message
        where = f"{path}: {field}" if field else path
        super().__init__(f"{where}: {message}")


class UnknownThreatModel(SpecError):
    """A name that matches no shipped or local spec; the message lists the known names (`known`)."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.known = known
        listing = ", ".join(known) if known else "(none found)"
        super().__init__(name, f"unknown threat model; known: {listing}")


class UsageError(MweError):
    """An option value that cannot work (an unknown model or export format, n < 1, an export aimed
    inside a published version), caught before anything is spent."""

    exit_code = 2


class ShortfallError(MweError):
    """Fewer items kept than asked within the attempt budget. The dataset is still published, so the
    CLI reports this as exit 3 rather than losing the items that were kept."""

    exit_code = 3


class ProviderError(MweError):
    """A model could not be reached or answered badly after the retries (the message names the
    provider, URL or server reason); answers already received stay cached."""

    exit_code = 4


class MissingDependency(ProviderError):
    """An optional extra is not installed; the message says which one to install."""


class AuthError(ProviderError):
    """An API key is missing or refused: the run stops before sending more. The key itself never
    appears in the message."""


class StoreError(MweError):
    """A file or folder cannot be written or read, or another build holds the lock; the message
    names the path. Nothing half-written is published."""

    exit_code = 5

    @classmethod
    def of(cls, exc: OSError, what: str, path: object = None, hint: str = "") -> StoreError:
        """One line from a file-system error: what could not be done, to which path, why, and
        (when given) what to do instead."""
        where = path if path is not None else exc.filename
        reason = exc.strerror or str(exc)
        return cls(f"{what} {where}: {reason}" + (f"; {hint}" if hint else ""))


class CostLimitReached(MweError):
    """Raised before the request that would pass --max-cost is sent. Answers already received are
    in the response cache, so a re-run with a higher limit pays only for what is still missing."""

    exit_code = 6


class JudgeNotCalibrated(MweError):
    """The spec asks for a judge with a minimum Cohen's κ against human labels, and the stored
    `mwe calibrate` result for this judge is missing or below it. Raised before any request."""

    exit_code = 7
