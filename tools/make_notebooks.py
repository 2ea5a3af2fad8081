"""Write the notebooks in notebooks/ (outputs stripped) from the cells below.

    .venv/bin/python tools/make_notebooks.py            # writes notebooks/*.ipynb
    .venv/bin/python tools/make_notebooks.py --check    # exit 1 when a notebook differs from this script

The notebooks use only twin's public API, run on the bundled samples (data/samples, tests/data) and are
executed by the test suite with nbmake (tests/test_notebooks.py). Edit the cells here, not the .ipynb files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "notebooks"

# Every notebook starts by finding the repository (nbmake runs a notebook in its own folder) and a scratch folder.
SETUP = '''\
import tempfile
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "data" / "samples" / "muenchen-tum").is_dir())
SAMPLE = ROOT / "data" / "samples" / "muenchen-tum"
WORK = Path(tempfile.mkdtemp(prefix="twin-notebook-"))
print("sample:", SAMPLE, "| scratch folder:", WORK)'''

IMPORT_CITY = '''\
from twin.workflows import import_city

scene = import_city(sorted((SAMPLE / "lod2").glob("*.gml")), WORK / "scenes" / "muenchen-tum",
                    terrain=sorted((SAMPLE / "dgm1").glob("*.tif")),
                    crs="EPSG:25832+7837")   # the Bavarian files name EPSG:25832 only; heights are DHHN2016
scene'''

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {}

NOTEBOOKS["01_quickstart"] = [
    ("md", """\
# twin quickstart: a city model, its terrain and the simulation grid

This notebook imports the bundled sample city (four official LoD2 buildings of the TUM main campus in
Munich with the DGM1 terrain around them; Bayerische Vermessungsverwaltung, CC BY 4.0), looks at what the
scene holds and burns it into the raster grid the models run on."""),
    ("code", SETUP),
    ("md", "## Import CityGML with its terrain"),
    ("code", IMPORT_CITY),
    ("code", '''\
from twin.workflows import scene_info

info = scene_info(scene)
print("CRS:", info["crs"])
print("features by layer:", info.get("layers"))
print("terrain:", {k: info["terrain"][k] for k in ("method", "shape") if k in info["terrain"]})
scene.features[["gml_id", "type", "layer", "lod"]]'''),
    ("code", '''\
cols = [c for c in ("name", "address", "function", "measuredHeight", "storeysAboveGround") if c in scene.attributes]
scene.attributes[cols]'''),
    ("md", "## Burn the scene into a grid\n\n`scene.to_grid(resolution)` gives terrain, buildings, land cover, "
           "imperviousness, roughness and infiltration parameters on one raster."),
    ("code", '''\
grid = scene.to_grid(2.0)
print(grid)
ds = grid.to_xarray()
list(ds.data_vars)'''),
    ("code", '''\
fig, axes = plt.subplots(1, 3, figsize=(14, 4.5), constrained_layout=True)
ds["terrain_elevation"].plot(ax=axes[0], cmap="terrain")
axes[0].set_title("terrain (m, DHHN2016)")
ds["building_height"].where(ds["building_id"] >= 0).plot(ax=axes[1], cmap="viridis")
axes[1].set_title("building height (m)")
ds["imperviousness"].plot(ax=axes[2], cmap="Greys", vmin=0, vmax=1)
axes[2].set_title("imperviousness")
for ax in axes:
    ax.set_aspect("equal")'''),
    ("code", '''\
path = grid.to_netcdf(WORK / "grid.nc")
print(path, f"{path.stat().st_size / 1e6:.1f} MB")
assert grid.shape == ds["terrain_elevation"].shape and (np.asarray(grid["building_id"]) >= 0).any()'''),
]

NOTEBOOKS["02_heavy_rain_study"] = [
    ("md", """\
# Heavy rain: one place, several storms

The dynamic heavy-rain model (local-inertial shallow water) on the sample city for a one-hour Euler type II
design storm of increasing severity: the 100-year rain (Starkregenindex SRI 7) and the extreme levels SRI 8
and 10, which are the 100-year depth times a factor (Schmitt et al. 2018, `twin.scenario.rain`).

**The 100-year depth below (45 mm in 60 min) is the example depth of the README, not Munich's value**: for a
study take the KOSTRA-DWD-2020 depth of the place for the return period and duration."""),
    ("code", SETUP),
    ("code", IMPORT_CITY),
    ("code", '''\
from twin.scenario.rain import SRI_EXTREME_FACTOR
from twin.sim.heavyrain import design_storm

DEPTH_100A_60MIN_MM = 45.0          # replace with the KOSTRA-DWD-2020 depth of the place
storms = {"SRI 7 (100 a)": DEPTH_100A_60MIN_MM,
          "SRI 8": DEPTH_100A_60MIN_MM * SRI_EXTREME_FACTOR[8],
          "SRI 10": DEPTH_100A_60MIN_MM * SRI_EXTREME_FACTOR[10]}
rains = {k: design_storm("euler2", depth_mm=d, duration_min=60) for k, d in storms.items()}
fig, ax = plt.subplots(figsize=(7, 3))
for k, r in rains.items():
    ax.step(np.asarray(r.times_s) / 60, r.intensity_mm_per_h, where="post", label=f"{k}: {storms[k]:.0f} mm")
ax.set_xlabel("minutes")
ax.set_ylabel("mm/h")
ax.legend();'''),
    ("md", "## Run the model for each storm (5 m grid, 65 minutes, open boundaries)"),
    ("code", '''\
from twin.sim.heavyrain import simulate

grid = scene.to_grid(5.0)
results = {}
for k, rain in rains.items():
    res = simulate(grid, duration_s=3900, rain=rain, boundary="open", output_interval_s=1300)
    results[k] = res
    wb = res.run_info["water_balance"]
    print(f"{k}: max depth {float(res.dataset['max_depth'].max()):.2f} m, rain {wb['rain_m3']:.0f} m3, "
          f"outflow {wb['outflow_m3']:.0f} m3, relative balance error {wb['relative_error']:.1e}")'''),
    ("code", '''\
fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.5), constrained_layout=True)
for ax, (k, res) in zip(axes, results.items()):
    res.dataset["max_depth"].where(res.dataset["max_depth"] > 0.03).plot(ax=ax, cmap="Blues", vmin=0, vmax=1)
    ax.set_title(k)
    ax.set_aspect("equal")'''),
    ("md", "## Flooded area by depth class"),
    ("code", '''\
import pandas as pd

cell_m2 = 5.0 * 5.0
table = pd.DataFrame({k: {f"> {t} m": float((res.dataset["max_depth"] > t).sum()) * cell_m2 for t in (0.1, 0.3, 0.5)}
                      for k, res in results.items()})
table.index.name = "flooded area (m2)"
print(table.round(0))
table.T.plot.bar(figsize=(7, 3), rot=0, ylabel="m2")
first, last = table.columns[0], table.columns[-1]
assert (table[last] >= table[first]).all()     # more rain floods at least as much'''),
]

NOTEBOOKS["03_heat_with_sensors"] = [
    ("md", """\
# Heat with sensors: live readings, a validation and a heat map

1. **Sensors**: a local OGC SensorThings server (django-ogc-sensorthings) is seeded with real readings of
   the Smart Urban Heat Map Bern (the sample shipped in `tests/data/sensors/`; *Data provided by the Smart
   Urban Heat Map Project for Bern, Switzerland*, CC-BY) and synced into a reading store with `twin.sensors`.
2. **Validation**: leave-one-station-out errors of the air-temperature interpolation at the Bern stations
   (in Bern, where they stand).
3. **Heat map**: the Munich sample has no public street sensors, so its map comes from the predictor model
   **without local readings** (background temperature of a hot day plus the effect of sealing, buildings,
   trees and water)."""),
    ("code", SETUP),
    ("code", '''\
from twin.workflows.demo import seed_bern_sensors

report = seed_bern_sensors(WORK, say=print)
print({k: report[k] for k in ("datastreams", "inserted", "readings", "stations")})'''),
    ("code", '''\
from twin.sensors import open_store

with open_store(WORK / "sensors.sqlite") as store:
    series = store.series("air_temperature")
    latest = store.latest(property="air_temperature")
long = series[series["datastream"] == series["datastream"].value_counts().idxmax()]
fig, ax = plt.subplots(figsize=(8, 3))
ax.plot(long["time"], long["value"], ".-", ms=3)
ax.set_title(f"{long['name'].iloc[0]} ({len(long)} readings)")
ax.set_ylabel("air temperature (°C)")
fig.autofmt_xdate()'''),
    ("md", "## Validation: leave one station out\n\nThe newest readings of the stations that reported within "
           "the same hour, projected to Swiss LV95 (EPSG:2056). Each station is predicted from the others."),
    ("code", '''\
import pandas as pd
from pyproj import Transformer

from twin.sim.heat import leave_one_out

df = pd.DataFrame(latest)
df["time"] = pd.to_datetime(df["t_end_us"], unit="us", utc=True)
df = df[df["time"] >= df["time"].max() - pd.Timedelta(hours=1)].reset_index(drop=True)
x, y = Transformer.from_crs("EPSG:4326", "EPSG:2056", always_xy=True).transform(df["lon"].to_numpy(), df["lat"].to_numpy())
errors = leave_one_out(x, y, df["value"].to_numpy(), night=False)
rmse = {k: float(np.sqrt(np.mean(np.square(v)))) for k, v in errors.items()}
print(f"{len(df)} stations at {df['time'].max():%Y-%m-%d %H:%M} UTC; leave-one-out RMSE (K):",
      {k: round(v, 2) for k, v in rmse.items()})
fig, ax = plt.subplots(figsize=(4.5, 4.5))
obs = df["value"].to_numpy()
for k, mk in (("rk", "o"), ("idw", "s"), ("mean", "^")):
    ax.plot(obs, obs + errors[k], mk, label=f"{k} (RMSE {rmse[k]:.2f} K)")
lims = [obs.min() - 1, obs.max() + 1]
ax.plot(lims, lims, "k--", lw=0.8)
ax.set_xlabel("observed (°C)")
ax.set_ylabel("predicted without the station (°C)")
ax.legend(fontsize=8);'''),
    ("md", "## The Munich heat map without local readings"),
    ("code", IMPORT_CITY),
    ("code", '''\
from twin.sim.heat import run_heat

grid = scene.to_grid(2.0)
run = run_heat(grid=grid, out_dir=WORK / "heat",
               weather={"time_utc": "2025-07-15T13:00:00Z", "ta_ref_c": 32.0, "wind_m_per_s": 2.0, "rh_pct": 40.0})
print(run["air_temperature"]["method"], "|", run.get("notes"))'''),
    ("code", '''\
import xarray as xr

with xr.open_dataset(WORK / "heat" / "result.nc") as res:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), constrained_layout=True)
    res["svf"].plot(ax=axes[0], cmap="gray", vmin=0, vmax=1)
    res["air_temperature"].plot(ax=axes[1], cmap="YlOrRd")
    axes[1].set_title("air temperature, predictor model without local readings")
    res["utci"].plot(ax=axes[2], cmap="YlOrRd")
    for ax in axes:
        ax.set_aspect("equal")
    assert np.isfinite(res["air_temperature"]).any()'''),
]

NOTEBOOKS["04_scenario_comparison"] = [
    ("md", """\
# Comparing scenarios: baseline and adaptation

A workspace with the sample city, two scenarios (the city as it is, and a "sponge city" adaptation with
unsealing, trees, a retention basin and green roofs), both run with heavy rain, screening and heat, then
compared: difference maps, the change per building and the indicators, and the council report. The grid
is coarse and the storm short so that this runs in a minute or two; the demo (`make demo`) runs the
sample's scenarios as they are shipped."""),
    ("code", SETUP),
    ("code", '''\
from twin.workflows import import_city

ws = WORK / "workspace"
scene = import_city(sorted((SAMPLE / "lod2").glob("*.gml")), ws / "scenes" / "muenchen-tum",
                    terrain=sorted((SAMPLE / "dgm1").glob("*.tif")), crs="EPSG:25832+7837")'''),
    ("code", '''\
from twin.scenario import parse_scenario

common = {
    "scene": "muenchen-tum", "resolution_m": 8.0,
    "forcing": {"rain": {"type": "design_storm", "return_period_a": 100, "duration_min": 30, "depth_mm": 35.0},
                "heat": {"type": "hot_day", "time": "2025-07-15T15:00:00+02:00", "air_temperature_c": 32.0}},
    "parameters": {"heavyrain": {"duration_s": 2700, "output_interval_s": 900}},
    "outputs": {"tiles": False},
}
square = lambda x0, y0, w, h: {"type": "Polygon", "coordinates": [[[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]]]}
baseline = parse_scenario({"name": "Bestand", **common})
adaptation = parse_scenario({
    "name": "Schwammstadt", **common,
    "edits": [
        {"type": "unseal", "area": square(690880, 5336080, 60, 80), "landcover": "grass", "label": "Innenhof"},
        {"type": "trees", "trees": [{"x": 690900 + 12 * i, "y": 5336140, "crown_radius_m": 4, "height_m": 12} for i in range(5)]},
        {"type": "retention_basin", "area": square(690880, 5336000, 40, 40), "depth_m": 1.0, "label": "Mulde"},
        {"type": "green_roofs", "buildings": ["DEBY_LOD2_4959457"]},
    ]})
[(e.type, e.label) for e in adaptation.edits]'''),
    ("code", '''\
from twin.workflows.run import run_scenario

runs = {}
for sc in (baseline, adaptation):
    rec = run_scenario(ws, sc, progress=lambda f, m: None)
    runs[sc.name] = rec.id
    print(sc.name, rec.id, rec.status, {k: round(v, 1) for k, v in (rec.timings or {}).items()})'''),
    ("md", "## Difference maps"),
    ("code", '''\
from twin.workflows import compare_runs

comp = compare_runs(ws, list(runs.values()))
ref, plan = comp.run_ids
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), constrained_layout=True)
comp.maps["max_depth"].sel(run=ref).where(lambda d: d > 0.03).plot(ax=axes[0], cmap="Blues", vmin=0, vmax=1)
axes[0].set_title(f"max depth, {ref}")
comp.maps["delta_max_depth"].sel(run=plan).plot(ax=axes[1], cmap="RdBu_r", center=0)
axes[1].set_title("change of max depth (m)")
heat = "delta_utci" if "delta_utci" in comp.maps else "delta_air_temperature"
comp.maps[heat].sel(run=plan).plot(ax=axes[2], cmap="RdBu_r", center=0)
axes[2].set_title(heat.replace("delta_", "change of ") + " (K)")
for ax in axes:
    ax.set_aspect("equal")'''),
    ("md", "## Indicators and buildings"),
    ("code", '''\
comp.indicators.drop(columns="label").round(2)'''),
    ("code", '''\
comp.buildings.drop(columns="geometry").T'''),
    ("code", '''\
ind = comp.indicators
assert ind.loc["volume_retained", plan] >= ind.loc["volume_retained", ref]      # unsealing and green roofs retain water
assert ind.loc["air_temperature_mean", plan] <= ind.loc["air_temperature_mean", ref] + 1e-6   # trees cool'''),
    ("md", "## The council report"),
    ("code", '''\
from twin.workflows.report import write_report

res = write_report(ws, list(runs.values()), ws / "report.html", lang="en", comparison=comp)
print(res.html, f"{res.html.stat().st_size / 1e3:.0f} kB")'''),
]


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for k, (kind, src) in enumerate(cells):
        cell = new_markdown_cell(src) if kind == "md" else new_code_cell(src)
        cell["id"] = f"{name[:2]}-{k:02d}"     # stable ids: the files only change when the cells do
        nb.cells.append(cell)
    return nb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only compare notebooks/ with this script")
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    stale = []
    for name, cells in NOTEBOOKS.items():
        text = nbformat.writes(build(name, cells)) + "\n"
        path = OUT / f"{name}.ipynb"
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("notebooks differ from tools/make_notebooks.py (run it): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
