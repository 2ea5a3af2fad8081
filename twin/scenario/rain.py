"""Design-storm depths: German Starkregenindex (SRI) levels and depth-duration curves.

Pure numbers, no model code: :class:`twin.scenario.DesignStorm` uses these to turn a scenario's
storm (return period or SRI level, duration, the place's depth-duration values) into the total depth
and depth-duration curve that :func:`twin.sim.heavyrain.forcing.design_storm` shapes into a
hyetograph (the workflow does that; this layer does not import the models).

Starkregenindex (Schmitt, Krüger, Pfister, Becker, Mudersbach, Fuchs, Hoppe & Lakes 2018,
"Einheitliches Konzept zur Bewertung von Starkregenereignissen mittels Starkregenindex",
KA Korrespondenz Abwasser, Abfall 65(2):113-120): a 12-step scale. Levels 1-7 are rains of a given
return period T for the duration at hand (KOSTRA-DWD depths of the place); levels 8-12 ("extremer
Starkregen", beyond T = 100 a) are the 100-year depth times a factor that is the same for every
duration. Categories: 1-2 Starkregen, 3-5 intensiver, 6-7 außergewöhnlicher, 8-12 extremer
Starkregen. SRI 7 = T 100 a is confirmed by municipal practice (e.g. Kassel's hazard map: 45 mm in
1 h, 100-year, "SRI 7") and by the Freiburg SRI service's method notes (levels 8-12 from level 7 by a
constant factor); NRW's Arbeitshilfe uses SRI 5/7/10 for its three load cases. The return periods of
levels 1-6 and the factors of levels 8-12 below are the publication's table as we know it; no copy of
the paper is kept with the project, so check them against Tab. 1 of the paper before a study relies
on them, and where a municipality fixes its own extreme depth (NRW: 90 mm in 1 h) give that depth
with ``depth_mm`` and no ``sri``.
"""

from __future__ import annotations

import math

from twin.errors import TwinValueError

__all__ = ["SRI_RETURN_PERIOD_A", "SRI_EXTREME_FACTOR", "SRI_CATEGORY", "sri_for_return_period", "depth_at"]

#: SRI level -> return period (years) whose depth the level stands for (levels 1-7)
SRI_RETURN_PERIOD_A: dict[int, float] = {1: 1.0, 2: 2.0, 3: 5.0, 4: 10.0, 5: 25.0, 6: 50.0, 7: 100.0}

#: SRI level -> factor on the 100-year depth of the same duration (levels 8-12)
SRI_EXTREME_FACTOR: dict[int, float] = {8: 1.2, 9: 1.4, 10: 1.7, 11: 2.0, 12: 2.3}

#: SRI level -> category name (German, as in the publication)
SRI_CATEGORY: dict[int, str] = {**{k: "Starkregen" for k in (1, 2)},
                                **{k: "intensiver Starkregen" for k in (3, 4, 5)},
                                **{k: "außergewöhnlicher Starkregen" for k in (6, 7)},
                                **{k: "extremer Starkregen" for k in (8, 9, 10, 11, 12)}}


def sri_for_return_period(return_period_a: float) -> int:
    """The SRI level (1-7) of a return period: the highest level whose return period it reaches."""
    if not (return_period_a > 0 and math.isfinite(return_period_a)):
        raise TwinValueError(f"return period {return_period_a!r} a must be a positive number of years")
    level = 1
    for k, t in SRI_RETURN_PERIOD_A.items():
        if return_period_a >= t - 1e-9:
            level = k
    return level


def depth_at(duration_min: float, depth_duration: list[tuple[float, float]]) -> float:
    """Depth (mm) at ``duration_min`` on a depth-duration curve ``[(duration_min, depth_mm), ...]``.

    Linear between the given durations (and from 0 mm at 0 min); outside the given range it is an
    error, never an extrapolation.
    """
    pts = sorted((float(d), float(h)) for d, h in depth_duration)
    if not pts:
        raise TwinValueError("the depth-duration curve is empty; give at least one (duration_min, depth_mm) pair")
    if duration_min > pts[-1][0] + 1e-9:
        raise TwinValueError(f"the storm lasts {duration_min:g} min but the depth-duration values end at "
                             f"{pts[-1][0]:g} min; add the depth for {duration_min:g} min (KOSTRA-DWD row)")
    xs = [0.0] + [p[0] for p in pts]
    ys = [0.0] + [p[1] for p in pts]
    for i in range(1, len(xs)):
        if duration_min <= xs[i] + 1e-9:
            x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
            return y1 if x1 == x0 else y0 + (y1 - y0) * (duration_min - x0) / (x1 - x0)
    return ys[-1]  # pragma: no cover
