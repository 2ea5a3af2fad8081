"""The demo: the whole twin on the bundled sample city in one call (``twin demo``, ``make demo``).

:func:`run_demo` fills a workspace (layout in DESIGN.md "Workspace, scenarios and runs"):

1. imports the sample city (``data/samples/muenchen-tum``: LoD2 buildings + DGM1 terrain) as
   ``scenes/<scene_id>`` and tiles it (``tiles/scenes/<scene_id>``);
2. the live-sensor path: starts a local OGC SensorThings server (django-ogc-sensorthings under
   uvicorn on 127.0.0.1), seeds it with the real readings of the shipped Bern sample
   (``tests/data/sensors/bern_sample.json``, Smart Urban Heat Map Bern, CC-BY; stations where they
   are, in Bern; nothing invented), syncs them into ``sensors.sqlite`` with :mod:`twin.sensors` and
   stops the server;
3. runs the sample's scenarios (``data/samples/scenarios/*.json``: the baseline first, then the
   adaptation) with :func:`twin.workflows.run.run_scenario`: heavy rain, screening and heat, with
   their tiles. The Munich sample has no public street sensors, so its heat map comes from the
   predictor model without local readings; the run notes and the report say so;
4. writes the council report comparing them (``report.html``, ``report_en.html`` and a PDF where
   Chromium is installed) and the comparison tables (``comparison/``).

Serving the viewer is the CLI's part (``twin demo`` calls ``twin serve`` afterwards, unless
``--no-serve``). Re-running reuses finished runs (the run registry) and takes seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from twin.errors import TwinError, TwinIOError

__all__ = ["run_demo", "DemoResult", "sample_root", "seed_bern_sensors", "BERN_ATTRIBUTION"]

BERN_ATTRIBUTION = "Data provided by the Smart Urban Heat Map Project for Bern, Switzerland."
SCENE_ID = "muenchen-tum"
_CRS = "EPSG:25832+7837"   # the Bavarian files name only EPSG:25832; their heights are DHHN2016
OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"


class DemoError(TwinError):
    """A step of the demo failed; the message names the step."""


@dataclass
class DemoResult:
    """What the demo made: the workspace, run ids per scenario, report files, sensor counts, timings."""

    workspace: Path
    scene_id: str
    runs: dict[str, str] = field(default_factory=dict)          # scenario id -> run id (baseline first)
    labels: dict[str, str] = field(default_factory=dict)        # scenario id -> scenario name
    report: Path | None = None
    report_en: Path | None = None
    pdf: Path | None = None
    sensors: dict = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def sample_root() -> Path:
    """The repository folder that holds ``data/samples`` (the demo runs from a checkout)."""
    here = Path(__file__).resolve()
    for cand in (here.parents[2], Path.cwd()):
        if (cand / "data" / "samples" / "muenchen-tum").is_dir():
            return cand
    raise TwinIOError("the sample data (data/samples/muenchen-tum) is not found next to the twin package or in the "
                      "current folder; run the demo from a clone of the repository")


# ------------------------------------------------------------------------------------------ sensors
def _bern_things(sample: dict) -> list[dict]:
    """Deep-insert payloads of the Bern sample: every Thing with its Location, its temperature and
    humidity Datastreams, their latest Observation and the time series of station 11117, verbatim."""
    locs = {loc["@iot.id"]: loc for loc in sample["Locations"]}
    by_thing: dict[str, list] = {}
    for ds in sample["Datastreams"]:
        by_thing.setdefault(ds["Thing"]["@iot.id"], []).append(ds)
    latest = {o["Datastream"]["@iot.id"]: o for o in sample["Observations"]}
    series = sample.get("Timeseries") or {}
    sensor = {"encodingType": "text/html", "metadata": "https://meteotest.github.io/urban-heat-API-docs"}
    out = []
    for th in sample["Things"]:
        tid = th["@iot.id"]
        loc = locs[tid]
        datastreams = []
        for ds in by_thing.get(tid, []):
            kind = ds["@iot.id"].split("-", 1)[1]      # temperature | humidity
            obs = {}
            if tid == series.get("station"):
                obs.update({t: v for t, v in series.get(kind, [])})
            o = latest.get(ds["@iot.id"])
            if o is not None:
                obs[o["phenomenonTime"]] = o["result"]
            datastreams.append({
                "name": ds["name"], "description": ds["description"], "unitOfMeasurement": ds["unitOfMeasurement"],
                "observationType": ds.get("observationType", OM_MEASUREMENT),
                "Sensor": dict(sensor, name=ds["Sensor"]["name"], description=ds["Sensor"].get("description", "")),
                "ObservedProperty": {"name": ds["ObservedProperty"]["name"],
                                     "definition": ds["ObservedProperty"]["definition"],
                                     "description": ds["ObservedProperty"]["name"]},
                "properties": {"bern_id": ds["@iot.id"], "attribution": BERN_ATTRIBUTION},
                "Observations": [{"phenomenonTime": t, "result": v} for t, v in sorted(obs.items())],
            })
        out.append({"name": th["name"], "description": th["description"],
                    "properties": dict(th.get("properties") or {}, bern_id=tid, attribution=BERN_ATTRIBUTION),
                    "Locations": [{"name": loc["name"], "description": loc["description"],
                                   "encodingType": "application/geo+json", "location": loc["location"]}],
                    "Datastreams": datastreams})
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout_s: float, log: Path) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            raise DemoError(f"the SensorThings server exited with {proc.returncode}: "
                            f"{log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise DemoError(f"the SensorThings server did not listen on port {port} within {timeout_s:.0f} s: "
                    f"{log.read_text(errors='replace')[-2000:]}")


def seed_bern_sensors(workspace: str | os.PathLike, *, sample: str | os.PathLike | None = None,
                      say: Callable[[str], None] = print, timeout_s: float = 90.0) -> dict:
    """The live-sensor path of the demo: a local SensorThings server seeded with the Bern sample,
    synced into ``workspace/sensors.sqlite`` (:func:`twin.sensors.sync`; the store is made anew, so
    it holds exactly the sample), then stopped.

    Returns the sync report (``to_dict()``) plus ``stations`` and ``readings`` in the store.
    """
    try:
        import sensorthings  # noqa: F401
    except ModuleNotFoundError as exc:
        raise DemoError("django-ogc-sensorthings is not installed (it comes with pip install -e '.[test]', which "
                        "`make` runs); the demo needs it for its local SensorThings server") from exc
    import httpx

    from twin.sensors.client import SensorThingsClient
    from twin.sensors.ingest import sync
    from twin.sensors.store import open_store

    ws = Path(workspace)
    sample = Path(sample) if sample else sample_root() / "tests" / "data" / "sensors" / "bern_sample.json"
    if not sample.exists():
        raise TwinIOError(f"the Bern sensor sample {sample} is missing; it ships in tests/data/sensors/")
    things = _bern_things(json.loads(sample.read_text(encoding="utf-8")))
    work = ws / ".sensorthings"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    port = _free_port()
    log = work / "server.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                       os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "twin.workflows._sta_server", "--port", str(port),
                                 "--db", str(work / "sta.sqlite3")], stdout=fh, stderr=subprocess.STDOUT, env=env)
    root = f"http://127.0.0.1:{port}/sensorthings/v1.1"
    try:
        _wait_port(port, proc, timeout_s, log)
        say(f"SensorThings server at {root} (django-ogc-sensorthings, local)")
        with httpx.Client(timeout=60.0) as http:
            for th in things:
                r = http.post(f"{root}/Things", json=th)
                if r.status_code != 201:
                    raise DemoError(f"seeding the SensorThings server with {th['name']!r} failed: HTTP {r.status_code} "
                                    f"{r.text[:300]}")
        n_obs = sum(len(ds["Observations"]) for th in things for ds in th["Datastreams"])
        say(f"seeded {len(things)} Bern stations with {n_obs} real observations (Smart Urban Heat Map, CC-BY)")
        fresh = work / "sensors.sqlite"   # synced anew, then moved into place: a second demo gives the same store
        with SensorThingsClient(root, timeout_s=30.0) as client, open_store(fresh) as store:
            report = sync(client, store, properties=["air_temperature", "relative_humidity"], since="2000-01-01T00:00:00Z")
            out = report.to_dict()
            out.pop("per_datastream", None)
            rows = store.list_datastreams()
            out["stations"] = len({(d.get("lon"), d.get("lat")) for d in rows})
            out["datastreams_in_store"] = len(rows)
            out["readings"] = int(store.count())
            out["seeded_observations"] = n_obs
            out["ok"] = bool(report.ok)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    if not out["ok"]:
        raise DemoError(f"the sensor sync did not complete: {out}")
    for suffix in ("-wal", "-shm"):
        (ws / f"sensors.sqlite{suffix}").unlink(missing_ok=True)
        if (work / f"sensors.sqlite{suffix}").exists():
            os.replace(work / f"sensors.sqlite{suffix}", ws / f"sensors.sqlite{suffix}")
    os.replace(fresh, ws / "sensors.sqlite")
    return out


# ------------------------------------------------------------------------------------------ scenarios
_BASELINE_WORDS = ("baseline", "bestand", "reference", "referenz", "ist-zustand")


def _scenarios(root: Path, folder: Path | None = None):
    """The sample's scenarios, the baseline first: the file or scenario named baseline/Bestand/reference,
    else the one with the fewest edits."""
    from twin.scenario import load_scenario

    folder = folder or root / "data" / "samples" / "scenarios"
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise TwinIOError(f"no scenario files in {folder}; the demo runs the sample's baseline and adaptation "
                          "scenarios from there")

    def key(item):
        f, s = item
        named = any(w in f.stem.lower() or w in s.name.lower() for w in _BASELINE_WORDS)
        return (not named, len(s.edits), s.name)

    return [s for _, s in sorted(((f, load_scenario(f)) for f in files), key=key)]


class _Steps:
    def __init__(self, say: Callable[[str], None], total: int) -> None:
        self.say, self.total, self.k = say, total, 0
        self.t0 = time.monotonic()
        self.timings: dict[str, float] = {}

    def start(self, key: str, text: str) -> float:
        self.k += 1
        self.say(f"[{self.k}/{self.total}] {text} ...")
        return time.monotonic()

    def done(self, key: str, t: float, text: str = "") -> None:
        dt = time.monotonic() - t
        self.timings[key] = round(dt, 2)
        self.say(f"      {text + ' ' if text else ''}({dt:.1f} s; {time.monotonic() - self.t0:.0f} s in all)")


def _run_progress(say: Callable[[str], None], label: str):
    state = {"last": -1.0, "t": 0.0, "msg": ""}

    def cb(fraction: float, message: str) -> None:
        now = time.monotonic()
        pct = int(100 * max(0.0, min(1.0, fraction)))
        if (pct >= state["last"] + 10 or now - state["t"] > 10 or fraction >= 1.0) and \
                (message != state["msg"] or pct != state["last"]):
            say(f"      {label}: {pct:3d} % {message}")
            state.update(last=pct, t=now, msg=message)
    return cb


def run_demo(workspace: str | os.PathLike = "workspace/demo", *, say: Callable[[str], None] = print,
             pdf: bool = True, sensors: bool = True, reuse: bool = True,
             scenarios: str | os.PathLike | None = None) -> DemoResult:
    """Build the demo workspace (see the module docstring). ``say`` receives the progress lines;
    ``scenarios`` is a folder of scenario JSON files to run instead of ``data/samples/scenarios``."""
    from twin.workflows import import_city
    from twin.workflows import tiles as write_scene_tiles
    from twin.workflows.compare import compare_runs
    from twin.workflows.report import write_report
    from twin.workflows.run import run_scenario

    root = sample_root()
    ws = Path(workspace)
    ws.mkdir(parents=True, exist_ok=True)
    scenarios = _scenarios(root, Path(scenarios) if scenarios else None)
    scene_id = scenarios[0].scene
    steps = _Steps(say, 3 + len(scenarios) + (1 if sensors else 0))
    res = DemoResult(ws.resolve(), scene_id)
    sample = root / "data" / "samples" / "muenchen-tum"

    # 1. the city
    t = steps.start("import", f"importing the sample city {sample.relative_to(root)} (LoD2 + DGM1)")
    scene_dir = ws / "scenes" / scene_id
    if reuse and (scene_dir / "scene.json").exists():
        scene_text = "already imported"
    else:
        scene = import_city(sorted((sample / "lod2").glob("*.gml")), scene_dir, crs=_CRS,
                            terrain=sorted((sample / "dgm1").glob("*.tif")), overwrite=True)
        n_b = int((scene.features["layer"] == "buildings").sum())
        scene_text = f"{n_b} building features, terrain {scene.terrain.shape[1]} x {scene.terrain.shape[0]} cells"
    steps.done("import", t, f"scene {scene_id}: {scene_text}")

    t = steps.start("scene_tiles", "3D Tiles of the city (buildings + terrain)")
    scene_tiles = ws / "tiles" / "scenes" / scene_id
    if reuse and (scene_tiles / "manifest.json").exists():
        steps.done("scene_tiles", t, "already there")
    else:
        write_scene_tiles(scene_dir, scene_tiles, overwrite=True)
        steps.done("scene_tiles", t, f"-> {scene_tiles}")

    # 2. live sensors
    if sensors:
        t = steps.start("sensors", "live sensors: local SensorThings server, Bern sample, sync into sensors.sqlite")
        res.sensors = seed_bern_sensors(ws, say=lambda m: say("      " + m))
        steps.done("sensors", t, f"{res.sensors['readings']} readings of {res.sensors['datastreams_in_store']} "
                                 f"datastreams in {ws / 'sensors.sqlite'}")

    # 3. the scenarios
    for sc in scenarios:
        t = steps.start(f"run_{sc.id}", f"scenario {sc.name!r}: {', '.join(sc.models or [])} + tiles")
        rec = run_scenario(ws, sc, reuse=reuse, progress=_run_progress(say, sc.id))
        if rec.status != "done":
            raise DemoError(f"scenario {sc.name!r} ended {rec.status}: {rec.error or rec.message}")
        res.runs[sc.id] = rec.id
        res.labels[sc.id] = sc.name
        steps.done(f"run_{sc.id}", t, f"run {rec.id}")
    run_ids = list(res.runs.values())

    # 4. comparison and report
    t = steps.start("report", "comparison and council report (de + en" + (", PDF" if pdf else "") + ")")
    comp = compare_runs(ws, run_ids)
    comp.write(ws / "comparison", overwrite=True)
    notes = []
    if sensors:
        notes.append(("Die Live-Sensoren der Demo (Bern, Smart Urban Heat Map) liegen nicht im Stadtmodell; "
                      "die Hitzekarte für München beruht daher auf dem Prädiktormodell ohne lokale Messwerte."))
    r = write_report(ws, run_ids, ws / "report.html", lang="de", pdf=pdf, comparison=comp, notes=notes,
                     scene_name="München, TUM-Stammgelände (Beispieldaten)")
    en_notes = ["The demo's live sensors (Bern, Smart Urban Heat Map) lie outside the city model; the Munich heat "
                "map therefore comes from the predictor model without local readings."] if sensors else []
    r_en = write_report(ws, run_ids, ws / "report_en.html", lang="en", comparison=comp, notes=en_notes,
                        scene_name="Munich, TUM main campus (sample data)")
    res.report, res.report_en, res.pdf = r.html, r_en.html, r.pdf
    if r.message:
        res.notes.append(r.message)
    steps.done("report", t, f"-> {r.html}" + (f", {r.pdf}" if r.pdf else ""))
    res.timings_s = steps.timings
    res.timings_s["total"] = round(time.monotonic() - steps.t0, 2)
    (ws / "demo.json").write_text(json.dumps({"scene": scene_id, "runs": res.runs, "labels": res.labels,
                                              "report": str(res.report), "report_en": str(res.report_en),
                                              "pdf": str(res.pdf) if res.pdf else None, "sensors": res.sensors,
                                              "timings_s": res.timings_s, "notes": res.notes}, indent=2, default=str))
    return res
