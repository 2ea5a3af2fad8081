"""Heavy rain (Starkregen): a local-inertial 2D inundation model on a raster.

Public surface: :class:`HeavyRainModel` (state and time loop), the forcing types and
:func:`simulate` (the workflow-level run with outputs); the screening tier (:func:`screen`:
Priority-Flood, depression hierarchy with Fill-Spill-Merge, D8/D-infinity flow accumulation and
building exposure). Importing this package compiles nothing.
"""

from __future__ import annotations

from twin.sim.heavyrain.forcing import (Losses, PointInflow, RainGrid, RainSeries, design_storm, read_inflow_csv,
                                        read_rain_csv, read_rain_netcdf, uniform_rain)
from twin.sim.heavyrain.model import HeavyRainModel, SimulationUnstableError, WaterBalance
from twin.sim.heavyrain.screening import (FLOW_PATH_CLASSES_M2, DepressionHierarchy, ExposureThresholds,
                                          FillSpillMergeResult, ScreeningResult, building_exposure,
                                          depression_hierarchy, fill_depressions, flow_accumulation,
                                          flow_directions, flow_path_classes, flow_paths, read_run_max_depth,
                                          screen)
from twin.sim.heavyrain.simulate import Gauge, HeavyRainResult, read_dem, read_gauges_csv, simulate

__all__ = ["simulate", "HeavyRainResult", "Gauge", "read_dem", "read_gauges_csv", "HeavyRainModel", "WaterBalance", "SimulationUnstableError", "RainSeries", "RainGrid", "PointInflow",
           "Losses", "uniform_rain", "design_storm", "read_rain_csv", "read_inflow_csv", "read_rain_netcdf",
           "screen", "ScreeningResult", "fill_depressions", "depression_hierarchy", "DepressionHierarchy",
           "FillSpillMergeResult", "flow_directions", "flow_accumulation", "flow_path_classes", "flow_paths",
           "FLOW_PATH_CLASSES_M2", "building_exposure", "ExposureThresholds", "read_run_max_depth"]
