"""Scenarios: a validated, serialisable description of edits, forcing, models and outputs.

:class:`Scenario` (pydantic v2; ``Scenario.model_json_schema()`` is the published JSON Schema) and
:func:`apply_edits`, which turns a scenario's edits into changes of a :class:`twin.grid.Grid`. This
package sits beside the models (it imports ``twin.grid`` and below, never ``twin.sim``): the workflow
(:mod:`twin.workflows.run`) feeds the edited grid and the forcing to the models.
"""

from __future__ import annotations

from twin.scenario.edits import EditReport, apply_edits
from twin.scenario.rain import SRI_CATEGORY, SRI_EXTREME_FACTOR, SRI_RETURN_PERIOD_A, sri_for_return_period
from twin.scenario.schema import (MODELS, AttributeCondition, DepthDuration, DesignStorm, Edit, Forcing, GreenRoofs,
                                  HeatParameters, HeavyRainParameters, HotDay, LineString, MultiPolygon,
                                  ObservedRain, Outputs, Parameters, Polygon, Reseal, RetentionBasin, Scenario,
                                  ScenarioError, ScreeningParameters, SewerCapacity, TerrainChange, Tree, Trees,
                                  Unseal, Wall, format_validation_error, load_scenario, parse_scenario,
                                  scenario_hash, scenario_id)

__all__ = ["Scenario", "ScenarioError", "parse_scenario", "load_scenario", "scenario_hash", "scenario_id",
           "format_validation_error", "apply_edits", "EditReport", "MODELS",
           "Unseal", "Reseal", "GreenRoofs", "AttributeCondition", "Trees", "Tree", "RetentionBasin", "TerrainChange",
           "Wall", "SewerCapacity", "Edit", "Polygon", "MultiPolygon", "LineString",
           "Forcing", "DesignStorm", "DepthDuration", "ObservedRain", "HotDay",
           "Parameters", "HeavyRainParameters", "ScreeningParameters", "HeatParameters", "Outputs",
           "SRI_RETURN_PERIOD_A", "SRI_EXTREME_FACTOR", "SRI_CATEGORY", "sri_for_return_period"]
