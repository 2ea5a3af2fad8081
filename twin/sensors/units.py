"""Explicit unit conversion table for sensor readings (UCUM and UN/CEFACT codes).

Every reading is stored in the canonical unit of its quantity:

=================  ==========  ==================================================
quantity           canonical   accepted spellings
=================  ==========  ==================================================
temperature        degC        Cel, °C, degC, C (UCUM/common), K, [degF], CEL, KEL
relative humidity  %           %, %RH, percent, P1 (UN/CEFACT); ``1``/C62 (ratio 0..1)
length (rain,      mm          mm, cm, m, MMT, CMT, MTR
water level)
rain rate          mm/h        mm/h, mm/min, mm/s, mm/(5.min), H67 (mm/h)
=================  ==========  ==================================================

An unknown unit is rejected with :class:`~twin.sensors.errors.UnitError`; it is never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from twin.sensors.errors import UnitError

__all__ = ["Conversion", "conversion_for", "KNOWN_UNITS"]


@dataclass(frozen=True)
class Conversion:
    """How to bring a value in ``source`` unit to ``canonical`` unit (``value * scale + offset``)."""

    source: str
    canonical: str
    scale: float = 1.0
    offset: float = 0.0

    def __call__(self, value: float) -> float:
        return value * self.scale + self.offset

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0


def _c(canonical: str, scale: float = 1.0, offset: float = 0.0) -> Callable[[str], Conversion]:
    return lambda source: Conversion(source, canonical, scale, offset)


# spelling (case-sensitive first, then case-folded) -> conversion to the canonical unit
_TABLE: dict[str, Callable[[str], Conversion]] = {
    # temperature
    "Cel": _c("degC"), "°C": _c("degC"), "degC": _c("degC"), "C": _c("degC"), "CEL": _c("degC"),
    "℃": _c("degC"), "deg C": _c("degC"),
    "K": _c("degC", 1.0, -273.15), "KEL": _c("degC", 1.0, -273.15),
    "[degF]": _c("degC", 5.0 / 9.0, -32.0 * 5.0 / 9.0), "°F": _c("degC", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
    # relative humidity
    "%": _c("%"), "%RH": _c("%"), "% RH": _c("%"), "percent": _c("%"), "P1": _c("%"),
    "1": _c("%", 100.0), "C62": _c("%", 100.0),
    # length: rain depth, water level
    "mm": _c("mm"), "MMT": _c("mm"), "cm": _c("mm", 10.0), "CMT": _c("mm", 10.0),
    "m": _c("mm", 1000.0), "MTR": _c("mm", 1000.0),
    # rain rate
    "mm/h": _c("mm/h"), "mm/hr": _c("mm/h"), "H67": _c("mm/h"), "mm/min": _c("mm/h", 60.0),
    "mm/s": _c("mm/h", 3600.0), "mm/(5.min)": _c("mm/h", 12.0), "mm/(10.min)": _c("mm/h", 6.0),
    # unit names (unitOfMeasurement.name) where the symbol is empty or odd
    "degree celsius": _c("degC"), "degrees celsius": _c("degC"), "kelvin": _c("degC", 1.0, -273.15),
    "millimetre": _c("mm"), "millimeter": _c("mm"), "centimetre": _c("mm", 10.0), "centimeter": _c("mm", 10.0),
    "metre": _c("mm", 1000.0), "meter": _c("mm", 1000.0), "millimetre per hour": _c("mm/h"),
    "millimeter per hour": _c("mm/h"), "percentage": _c("%"),
}
_FOLDED = {k.casefold(): v for k, v in _TABLE.items() if k not in ("C", "K", "m", "1")}

KNOWN_UNITS: tuple[str, ...] = tuple(sorted(_TABLE))


def conversion_for(unit_of_measurement: dict | str | None, *, datastream: str = "?") -> Conversion:
    """The conversion of a Datastream's ``unitOfMeasurement`` (dict with symbol/name/definition, or a code).

    The ``symbol`` is tried first, then the ``name`` and the fragment of ``definition``.

    Raises
    ------
    UnitError
        When no spelling is in the table; the message names the Datastream and the unit.
    """
    if isinstance(unit_of_measurement, dict):
        candidates = [unit_of_measurement.get("symbol"), unit_of_measurement.get("name")]
        definition = unit_of_measurement.get("definition") or ""
        if "#" in definition:
            candidates.append(definition.rsplit("#", 1)[1])
    else:
        candidates = [unit_of_measurement]
    for cand in candidates:
        if not isinstance(cand, str) or not cand.strip():
            continue
        key = cand.strip()
        make = _TABLE.get(key) or _FOLDED.get(key.casefold())
        if make is not None:
            return make(key)
    raise UnitError(
        f"Datastream {datastream}: unknown unit of measurement {unit_of_measurement!r}; "
        f"known symbols are {', '.join(KNOWN_UNITS)}. Fix: correct the Datastream's unitOfMeasurement.symbol "
        "on the server, or add the unit to twin.sensors.units._TABLE with its conversion")
