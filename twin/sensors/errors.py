"""Errors of twin.sensors; each derives from a twin.errors class (and so from the matching builtin)."""

from __future__ import annotations

from twin.errors import TwinIOError, TwinValueError

__all__ = ["UnitError", "SensorServerError", "CircuitOpenError", "PagingError"]


class UnitError(TwinValueError):
    """A Datastream's unitOfMeasurement is not in the conversion table (twin.sensors.units)."""


class SensorServerError(TwinIOError):
    """A sensor server answered with an error, or not at all, after every retry."""


class CircuitOpenError(SensorServerError):
    """The circuit breaker for a server is open: too many consecutive failures, calls are refused."""


class PagingError(SensorServerError):
    """A collection could not be paged to its end (nextLink loop, page cap)."""
