"""Urban heat: sky view factor, shadows, sensor-driven air-temperature maps, Tmrt/UTCI and scenarios.

Importing this package compiles nothing; the Numba kernels compile on first use.
"""

from __future__ import annotations

from twin.sim.heat.airtemp import AirTemperatureModel, fit_air_temperature, leave_one_out
from twin.sim.heat.comfort import mean_radiant_temperature, utci
from twin.sim.heat.geometry import horizon_angles, sky_view_factor, sunlit_fraction
from twin.sim.heat.model import run_heat, scenario_delta
from twin.sim.heat.sun import shade_hours, solar_position

__all__ = ["sky_view_factor", "horizon_angles", "sunlit_fraction", "solar_position", "shade_hours",
           "AirTemperatureModel", "fit_air_temperature", "leave_one_out", "mean_radiant_temperature", "utci",
           "run_heat", "scenario_delta"]
