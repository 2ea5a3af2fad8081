"""Terrain: read DEMs (GeoTIFF/COG, ESRI ASCII grid, DGM1 .xyz), mosaic, clip, attach, check alignment.

``twin import CITYGML --terrain DEM...`` calls :func:`attach_terrain`; ``twin info`` prints
:func:`terrain_info` and :func:`alignment_report`.
"""

from __future__ import annotations

from twin.grid import TerrainRaster, approximate_terrain
from twin.terrain.alignment import alignment_report, format_alignment, terrain_info
from twin.terrain.read import attach_terrain, read_terrain

__all__ = ["TerrainRaster", "read_terrain", "attach_terrain", "approximate_terrain", "alignment_report",
           "format_alignment", "terrain_info"]
