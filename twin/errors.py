"""Exceptions and warnings of twin.

Every exception derives from :class:`TwinError` and, where one fits, from the builtin that
describes the failure, so ``except OSError`` keeps working for callers that do not know twin.
"""

from __future__ import annotations

__all__ = [
    "TwinError",
    "TwinIOError",
    "TwinValueError",
    "CRSError",
    "MissingGridError",
    "CityGMLError",
    "HostileXMLError",
    "SceneFormatError",
    "TwinWarning",
]


class TwinError(Exception):
    """Root of every error raised by twin."""


class TwinIOError(TwinError, OSError):
    """A file could not be read or written."""


class TwinValueError(TwinError, ValueError):
    """An argument or an input value is invalid."""


class CRSError(TwinValueError):
    """A coordinate reference system is missing, unknown or cannot be used."""


class MissingGridError(CRSError):
    """A transformation needs a grid (e.g. a geoid model) that PROJ cannot find."""


class CityGMLError(TwinIOError):
    """A CityGML document cannot be imported at all (a single bad feature is only reported)."""


class HostileXMLError(CityGMLError):
    """The document uses XML features that are refused for safety (DTD entities, external references)."""


class SceneFormatError(TwinIOError):
    """A saved scene folder is missing files or was written by an incompatible version."""


class TwinWarning(UserWarning):
    """Base class of twin's warnings."""
