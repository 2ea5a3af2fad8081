"""The browser tests' workspace: the bundled Munich sample, two short heavy-rain runs and their tiles.

Laid out as DESIGN.md "Workspace, scenarios and runs" says (``scenes/``, ``runs/<id>/heavyrain``,
``tiles/scenes/<id>``, ``tiles/runs/<id>``), built with the library's own import, model and
tiles functions. Two runs of different rain depths give the viewer something to compare.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "samples" / "muenchen-tum"
SCENE_ID = "muenchen-tum"
#: run id -> rain depth (mm) of a 20 min block storm
RUNS = {"starkregen-60mm": 60.0, "starkregen-30mm": 30.0}
#: fields draped for the viewer (all of a run's fields would be ~130 MB and a minute of writing)
FIELDS = ("max_depth", "arrival_time", "depth")
#: one colour scale for the depths of both runs, so that their colours compare
STYLES = {name: {"colormap": "water", "vmin": 0.0, "vmax": 0.5, "transparent_below": 0.01}
          for name in ("max_depth", "depth")}
RESOLUTION_M = 5.0
#: the scenario a test starts from the page: 30 mm in 10 min on a 10 m grid, 10 min simulated (~15 s)
SCENARIO_ID = "kurzer-starkregen"
SCENARIO = {
    "name": "Kurzer Starkregen", "scene": SCENE_ID, "resolution_m": 10.0,
    "description": "30 mm in 10 minutes (block), 10 minutes simulated on a 10 m grid",
    "forcing": {"rain": {"type": "design_storm", "duration_min": 10, "depth_mm": 30.0, "shape": "block"}},
    "models": ["heavyrain"],
    "parameters": {"heavyrain": {"duration_s": 600, "output_interval_s": 200, "boundary": "open"}},
    "outputs": {"fields": ["max_depth"]},
}
DURATION_S = 1200.0
OUTPUT_INTERVAL_S = 400.0


@dataclass
class Workspace:
    """What the tests need to know about the workspace they look at."""

    path: Path
    scene_id: str
    run_ids: list[str]
    #: gml_id -> {"roof_ecef": [x, y, z], "values": {property: value}} for each building
    buildings: dict = field(default_factory=dict)
    snapshots: int = 0
    #: the seeded weather station: thing, lon, lat, values {property: value}
    sensor: dict = field(default_factory=dict)


def _roof_points(scene) -> dict[str, np.ndarray]:
    """ECEF of the centroid of each building's largest roof triangle (a point surely on its roof)."""
    from twin.crs import to_ecef
    from twin.scene import surface_type_code

    roof = scene.triangle_surface_type == surface_type_code("RoofSurface")
    feats = scene.features
    root = feats["root"].to_numpy(np.int64)
    root = np.where(root >= 0, root, np.arange(len(feats)))
    tri_root = root[scene.triangle_feature]
    out = {}
    for r in np.unique(tri_root[roof]):
        sel = np.flatnonzero(roof & (tri_root == r))
        v = scene.vertices[scene.triangles[sel]]                    # (k, 3, 3)
        area = 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
        # flattest large triangle: the pick ray from a tilted camera still hits it
        best = sel[np.argmax(area)]
        centre = scene.vertices[scene.triangles[best]].mean(axis=0)
        out[str(feats["gml_id"].iloc[r])] = to_ecef(scene.crs, centre[None, :])[0]
    return out


def build_workspace(path: Path) -> Workspace:
    """Import the sample city, run two short heavy-rain storms and write their tiles under ``path``."""
    from twin.scene import Scene
    from twin.sim.heavyrain import simulate
    from twin.sim.heavyrain.forcing import design_storm
    from twin.tiles import read_run, write_tiles
    from twin.tiles.runs import building_values
    from twin.tiles.writer import _building_bboxes
    from twin.workflows import import_city

    path = Path(path)
    scene_dir = path / "scenes" / SCENE_ID
    import_city(sorted((SAMPLE / "lod2").glob("*.gml")), scene_dir, crs="EPSG:25832+7837",
                terrain=sorted((SAMPLE / "dgm1").glob("*.tif")))
    scene = Scene.load(scene_dir)
    write_tiles(scene, path / "tiles" / "scenes" / SCENE_ID)
    grid = scene.to_grid(RESOLUTION_M)
    ws = Workspace(path, SCENE_ID, list(RUNS))
    gml_ids, bboxes = _building_bboxes(scene)
    roofs = _roof_points(scene)
    for run_id, depth_mm in RUNS.items():
        rain = design_storm("block", depth_mm=depth_mm, duration_min=20)
        result = simulate(grid, duration_s=DURATION_S, rain=rain, output_interval_s=OUTPUT_INTERVAL_S,
                          boundary="open")
        run_dir = path / "runs" / run_id / "heavyrain"
        result.write(run_dir)
        _register(path, run_id, depth_mm, result)
        res = read_run(run_dir)
        res.fields = [f for f in res.fields if f.name in FIELDS]
        write_tiles(scene, path / "tiles" / "runs" / run_id, runs=[res], styles=STYLES)
        values = building_values(res, gml_ids, bboxes)
        ws.snapshots = max(ws.snapshots, max(len(f.times) for f in res.fields if f.times is not None))
        for gid in gml_ids:
            entry = ws.buildings.setdefault(str(gid), {"roof_ecef": [float(c) for c in roofs[str(gid)]],
                                                        "values": {}})
            entry["values"][run_id] = {k: float(v) for k, v in values.loc[str(gid)].items()}
    ws.sensor = _seed_sensors(path, scene)
    (path / "scenarios").mkdir()
    (path / "scenarios" / f"{SCENARIO_ID}.json").write_text(json.dumps(SCENARIO, indent=1))
    return ws


def _register(path: Path, run_id: str, depth_mm: float, result) -> None:
    """Record the run as done in the run registry, as ``twin.workflows.run_scenario`` would."""
    import hashlib

    from twin.workflows.registry import RunRegistry, utc_now

    registry = RunRegistry(path)
    registry.create(scenario_id=run_id, scenario_hash=hashlib.sha256(f"block {depth_mm} mm".encode()).hexdigest(),
                    models=["heavyrain"], run_id=run_id, run_dir=str(path / "runs" / run_id))
    now = utc_now()
    registry.update(run_id, status="done", progress=1.0, message="done", started=now, finished=now,
                    water_balance=json.loads(json.dumps(result.run_info.get("water_balance", {}), default=float)))


def _seed_sensors(path: Path, scene) -> dict:
    """One weather station in the middle of the scene with a temperature and a (QC-flagged) rain reading."""
    from datetime import datetime, timezone

    from twin.crs import to_ellipsoidal
    from twin.sensors.store import open_store

    lon, lat, _ = to_ellipsoidal(scene.crs, np.array([[scene.origin[0] + 60.0, scene.origin[1] - 80.0,
                                                       scene.origin[2]]]))[0]
    t_us = int(datetime(2026, 7, 15, 12, 0, tzinfo=timezone.utc).timestamp() * 1e6)
    station = {"thing": "Wetterstation TUM", "lon": float(lon), "lat": float(lat),
               "values": {"air_temperature": 27.4, "precipitation": 12.6}}
    with open_store(path / "sensors.sqlite") as store:
        for i, (prop, unit, value, flags) in enumerate([("air_temperature", "degC", 27.4, 0),
                                                         ("precipitation", "mm", 12.6, 2)]):
            ds = store.upsert_datastream(source="http://127.0.0.1:9/sta/v1.1", iot_id=str(i + 1), name=prop,
                                         property=prop, unit=unit, thing=station["thing"], lon=float(lon),
                                         lat=float(lat))
            store.insert(ds, [(t_us, t_us, value, t_us, flags, str(100 + i))])
    return station
