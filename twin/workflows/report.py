"""The council report: one self-contained HTML file (and a PDF where Chromium is installed).

:func:`write_report` compares runs (:func:`twin.workflows.compare.compare_runs`) and renders the
Jinja2 template ``twin/data/report/report.html.j2`` with the strings of ``strings.json`` (German by
default, English with ``lang="en"``): the runs compared, a summary of the key indicators, maps
before/after/difference (matplotlib, embedded as PNG data URIs, so the file can be mailed as it is),
the affected buildings, all indicators, a method and uncertainty statement built from the runs'
``run.json`` and the data sources with the attributions their licences require (read from the
README.md / PROVENANCE.md next to the scene's source files).

The PDF is printed by headless Chromium (``--print-to-pdf``; Debian's ``chromium``, installed by
``make sysdeps``). Where no Chromium is found the PDF is skipped and :class:`ReportResult` says why.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from twin.errors import TwinError, TwinIOError, TwinValueError

__all__ = ["write_report", "render_report", "ReportResult", "print_pdf", "find_chromium", "data_sources", "LANGUAGES"]

LANGUAGES = ("de", "en")
_DATA = Path(__file__).resolve().parents[1] / "data" / "report"
#: indicators shown in the summary (in this order, where present)
SUMMARY_KEYS = ("flooded_area_gt_0.1m", "flooded_area_gt_0.3m", "flooded_area_gt_0.5m", "buildings_exposure_high",
                "buildings_exposure_medium", "volume_retained", "utci_area_gt_32", "utci_area_gt_38", "utci_mean",
                "air_temperature_mean")
#: +1: more is better, -1: less is better (colours of the change column); others are neutral
_DIRECTION = {"volume_retained": 1, "buildings_exposure_low": 1, "volume_runoff": -1, "buildings_exposure_medium": -1,
              "buildings_exposure_high": -1, "utci_mean": -1, "air_temperature_mean": -1}
_DIRECTION.update({k: -1 for k in ("flooded_area_gt_0.1m", "flooded_area_gt_0.3m", "flooded_area_gt_0.5m",
                                   "utci_area_gt_26", "utci_area_gt_32", "utci_area_gt_38", "utci_area_gt_46")})


class ReportError(TwinError):
    """The PDF could not be printed."""


@dataclass
class ReportResult:
    """What :func:`write_report` wrote: ``html``, ``pdf`` (None when skipped, ``message`` says why)."""

    html: Path
    pdf: Path | None = None
    message: str = ""
    comparison: object = None
    sources: list = field(default_factory=list)


# ------------------------------------------------------------------------------------------ formatting
def _strings(lang: str) -> dict:
    if lang not in LANGUAGES:
        raise TwinValueError(f"report language {lang!r} unknown; use one of {', '.join(LANGUAGES)}")
    return json.loads((_DATA / "strings.json").read_text(encoding="utf-8"))[lang]



def _delta_cell(d: float, digits: int, lang: str) -> dict:
    """A table cell for a change (scenario - reference): lower is better for depth, temperature and UTCI."""
    cls = "" if not np.isfinite(d) or round(d, digits) == 0 else ("better" if d < 0 else "worse")
    return {"text": _fmt(d, digits, lang, sign=True), "cls": "num " + cls}

def _fmt(v, digits: int, lang: str, *, sign: bool = False) -> str:
    if v is None or (isinstance(v, (float, np.floating)) and not math.isfinite(float(v))):
        return "–"
    v = float(v)
    if round(v, digits) == 0:
        v = 0.0
    text = f"{v:{'+' if sign and v != 0 else ''},.{digits}f}"
    if lang == "de":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text.replace("-", "−")


def _digits(unit: str, values) -> int:
    if unit in ("buildings",):
        return 0
    if unit in ("m2", "m3"):
        return 0
    if unit == "degC":
        return 1
    finite = [abs(float(v)) for v in values if v is not None and np.isfinite(v)]
    return 2 if not finite or max(finite) < 10 else 1


def _unit(unit: str, s: dict, lang: str, *, delta: bool = False) -> str:
    if unit == "degC":
        return "K" if delta else "°C"
    return {"m2": "m²", "m3": "m³", "buildings": "Gebäude" if lang == "de" else "buildings"}.get(unit, unit)


def _indicator_rows(comp, keys, s, lang):
    ind = comp.indicators
    ids = comp.run_ids
    rows = []
    for key in keys:
        if key not in ind.index:
            continue
        r = ind.loc[key]
        vals = [r[i] for i in ids]
        dig = _digits(r["unit"], vals)
        deltas = []
        for rid in ids[1:]:
            d = r[f"delta[{rid}]"]
            cls = ""
            direction = _DIRECTION.get(key, 0)
            if direction and d is not None and np.isfinite(d) and round(float(d), dig) != 0:
                cls = "better" if np.sign(d) == direction else "worse"
            unit = " K" if r["unit"] == "degC" else ""
            deltas.append({"text": _fmt(d, dig, lang, sign=True) + unit, "cls": cls})
        label = s["indicator_labels"].get(key, r["label"])
        if key.startswith("flooded_area") and "outside retention basins" in str(r["label"]):
            label += s["outside_basins"]
        rows.append({"key": key, "label": label,
                     "unit": _unit(r["unit"], s, lang), "cells": [_fmt(v, dig, lang) for v in vals], "deltas": deltas})
    return rows


# ------------------------------------------------------------------------------------------ figures
def _png_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _map_figures(comp, s, lang) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    maps = comp.maps
    ids = comp.run_ids
    labels = {r.id: r.label for r in comp.runs}
    heat_field = "utci" if "utci" in maps else ("air_temperature" if "air_temperature" in maps else None)
    figures = []
    for name in [n for n in ("max_depth", heat_field) if n and n in maps]:
        da = maps[name]
        ydim, xdim = da.dims[1], da.dims[2]
        x, y = maps[xdim].values, maps[ydim].values
        dx = abs(x[1] - x[0]) if len(x) > 1 else 1.0
        dy = abs(y[1] - y[0]) if len(y) > 1 else 1.0
        extent = (x.min() - dx / 2, x.max() + dx / 2, y.min() - dy / 2, y.max() + dy / 2)
        for rid in ids[1:]:
            ref = da.sel(run=ids[0]).values.astype(float)
            run = da.sel(run=rid).values.astype(float)
            diff = maps[f"delta_{name}"].sel(run=rid).values.astype(float)
            if y[0] < y[-1]:   # north up
                ref, run, diff = ref[::-1], run[::-1], diff[::-1]
            if name == "max_depth":
                ref = np.where(ref > 0.03, ref, np.nan)   # thin sheet flow would tint the whole map
                run = np.where(run > 0.03, run, np.nan)
                both = np.concatenate([ref[np.isfinite(ref)], run[np.isfinite(run)]])
                vmin, vmax, cmap = 0.0, max(0.1, float(np.percentile(both, 99))) if both.size else 1.0, "Blues"
            elif name == "utci":   # the heat-stress classes of Bröde et al. (2012), not a stretched scale
                cmap = "utci"
                vmin, vmax = None, None
            else:
                both = np.concatenate([ref[np.isfinite(ref)], run[np.isfinite(run)]])
                vmin, vmax = (float(np.percentile(both, 2)), float(np.percentile(both, 98))) if both.size else (0, 1)
                vmax = max(vmax, vmin + 0.5)
                cmap = "YlOrRd"
            fin = np.abs(diff[np.isfinite(diff)])
            dmax = float(np.percentile(fin, 99.5)) if fin.size else 0.0
            dmax = max(dmax, 0.02 if name == "max_depth" else 0.1)
            fig, axes = plt.subplots(1, 3, figsize=(12.5, 4.6), constrained_layout=True)
            panels = ((ref, labels[ids[0]], cmap, vmin, vmax), (run, labels[rid], cmap, vmin, vmax),
                      (diff, f"{s['difference']}: {labels[rid]} − {labels[ids[0]]}", "RdBu_r", -dmax, dmax))
            unit = "m" if name == "max_depth" else "K"
            for ax, (arr, title, cm, lo, hi) in zip(axes, panels):
                ax.set_facecolor("#eceff3")
                if cm == "utci":
                    ucmap, unorm = _utci_classes()
                    im = ax.imshow(arr, extent=extent, cmap=ucmap, norm=unorm, interpolation="nearest")
                else:
                    im = ax.imshow(arr, extent=extent, cmap=cm, vmin=lo, vmax=hi, interpolation="nearest")
                _outlines(ax, comp.buildings)
                ax.set_xlim(extent[0], extent[1])
                ax.set_ylim(extent[2], extent[3])
                ax.set_title(title, fontsize=10)
                ax.tick_params(labelsize=7)
                ax.ticklabel_format(useOffset=False, style="plain")
                ax.xaxis.set_major_locator(MaxNLocator(3))
                ax.yaxis.set_major_locator(MaxNLocator(4))
                cb = fig.colorbar(im, ax=ax, orientation="horizontal", shrink=0.85, pad=0.02)
                cb.ax.tick_params(labelsize=7)
                if cm == "RdBu_r":
                    cb.set_label(unit if name == "max_depth" else "K", fontsize=8)
                else:
                    cb.set_label("m" if name == "max_depth" else "°C", fontsize=8)
            for ax in axes[1:]:
                ax.set_yticklabels([])
            caption = s["fields"][name] + (f" — {labels[rid]}" if len(ids) > 2 else "")
            fig.suptitle(s["fields"][name], fontsize=11)
            figures.append({"key": f"{name}-{rid}", "uri": _png_uri(fig), "caption": caption})
            plt.close(fig)
    return figures


def _utci_classes():
    """Discrete colours of the UTCI heat-stress classes: below 26 (no heat stress), 26-32 moderate,
    32-38 strong, 38-46 very strong, above 46 degC extreme (Bröde et al. 2012)."""
    from matplotlib.colors import BoundaryNorm, ListedColormap

    cmap = ListedColormap(["#8fd19e", "#ffe08a", "#f9a03f", "#e4572e", "#8b1e3f"]).with_extremes(bad="#eceff3")
    return cmap, BoundaryNorm([0, 26, 32, 38, 46, 60], cmap.N)


def _outlines(ax, buildings) -> None:
    try:
        geoms = [g for g in buildings.geometry if g is not None and not g.is_empty]
    except AttributeError:
        return
    for g in geoms:
        for poly in getattr(g, "geoms", [g]):
            if hasattr(poly, "exterior"):
                xs, ys = poly.exterior.xy
                ax.plot(xs, ys, color="black", linewidth=0.7)


def _indicator_chart(comp, s, lang) -> dict | None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ind = comp.indicators
    groups = [(k, s["indicator_labels"].get(k, k)) for k in ("flooded_area_gt_0.1m", "flooded_area_gt_0.3m",
                                                            "flooded_area_gt_0.5m") if k in ind.index]
    heat = [(k, s["indicator_labels"].get(k, k)) for k in ("utci_area_gt_26", "utci_area_gt_32", "utci_area_gt_38",
                                                          "utci_area_gt_46") if k in ind.index]
    panels = [p for p in (groups, heat) if p]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 2.8), constrained_layout=True, squeeze=False)
    colors = ["#7f8c9d", "#0b8a5f", "#0b5394", "#b45f06", "#8e44ad"]
    for ax, rows in zip(axes[0], panels):
        n = len(comp.runs)
        width = 0.8 / n
        for k, r in enumerate(comp.runs):
            vals = [float(np.nan_to_num(ind.loc[key, r.id])) for key, _ in rows]
            ax.bar(np.arange(len(rows)) + (k - (n - 1) / 2) * width, vals, width, label=r.label,
                   color=colors[k % len(colors)])
        short = [re.sub(r"^[^0-9]*?(über|above)\s*", ">", lab).split(" (")[0] for _, lab in rows]
        ax.set_xticks(np.arange(len(rows)), short, fontsize=8)
        ax.set_ylabel("m²", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.set_title(s["chart_flood"] if rows is groups else s["chart_heat"], fontsize=10)
        ax.legend(fontsize=8)
        if lang == "de":
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: _fmt(v, 0, "de")))
    uri = _png_uri(fig)
    plt.close(fig)
    return {"uri": uri, "caption": s["indicators"]}


# ------------------------------------------------------------------------------------------ buildings
def _building_rows(comp, s, lang, limit: int):
    b = comp.buildings
    ids = comp.run_ids
    depth_cols = [f"max_depth_m[{i}]" for i in ids if f"max_depth_m[{i}]" in b]
    expo_cols = [f"exposure[{i}]" for i in ids if f"exposure[{i}]" in b]
    heat_q = "utci_c" if any(f"utci_c[{i}]" in b for i in ids) else ("ta_c" if any(f"ta_c[{i}]" in b for i in ids) else None)
    affected = np.zeros(len(b), bool)
    for c in depth_cols:
        affected |= np.nan_to_num(b[c].to_numpy(float)) > 0.1
    for c in expo_cols:
        affected |= b[c].isin(["medium", "high"]).to_numpy()
    if not depth_cols and not expo_cols:
        affected[:] = True
    sel = b[affected]
    if depth_cols:
        sel = sel.assign(_k=np.nan_to_num(sel[depth_cols[0]].to_numpy(float), nan=-1)).sort_values("_k", ascending=False)
    more = max(0, len(sel) - limit)
    sel = sel.head(limit)
    head = [{"text": s["building"], "cls": ""}, {"text": s["name_address"], "cls": ""}]
    ref = ids[0]
    for rid in ids:
        lab = next(r.label for r in comp.runs if r.id == rid)
        if f"max_depth_m[{rid}]" in b:
            head.append({"text": f"{s['depth']} {lab}", "cls": "num"})
    for rid in ids[1:]:
        if f"delta_max_depth_m[{rid}]" in b:
            head.append({"text": f"Δ {s['depth']}", "cls": "num"})
    if expo_cols:
        head.append({"text": s["exposure"], "cls": ""})
    if heat_q:
        title = s["utci"] if heat_q == "utci_c" else s["ta"]
        for rid in ids:
            if f"{heat_q}[{rid}]" in b:
                lab = next(r.label for r in comp.runs if r.id == rid)
                head.append({"text": f"{title} {lab}", "cls": "num"})
        for rid in ids[1:]:
            if f"delta_{heat_q}[{rid}]" in b:
                head.append({"text": "Δ K", "cls": "num"})
    ex = s["exposure_classes"]
    rows = []
    for gml, r in sel.iterrows():
        name = " · ".join(str(r[c]) for c in ("name", "address") if c in r and r[c] not in (None, "") and r[c] == r[c]
                          and str(r[c]) != gml)
        row = [{"text": gml, "cls": ""}, {"text": name, "cls": ""}]
        for rid in ids:
            if f"max_depth_m[{rid}]" in b:
                row.append({"text": _fmt(r[f"max_depth_m[{rid}]"], 2, lang), "cls": "num"})
        for rid in ids[1:]:
            if f"delta_max_depth_m[{rid}]" in b:
                row.append(_delta_cell(r[f"delta_max_depth_m[{rid}]"], 2, lang))
        if expo_cols:
            parts = [ex.get(str(r[c]), str(r[c])) if r[c] is not None and r[c] == r[c] else "–" for c in expo_cols]
            row.append({"text": " → ".join(parts) if len(set(parts)) > 1 else parts[0], "cls": ""})
        if heat_q:
            for rid in ids:
                if f"{heat_q}[{rid}]" in b:
                    row.append({"text": _fmt(r[f"{heat_q}[{rid}]"], 1, lang), "cls": "num"})
            for rid in ids[1:]:
                if f"delta_{heat_q}[{rid}]" in b:
                    row.append(_delta_cell(r[f"delta_{heat_q}[{rid}]"], 1, lang))
        rows.append(row)
    return head, rows, more


# ------------------------------------------------------------------------------------------ method
def _read_json(p: Path | None) -> dict:
    if p is None or not p.exists():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except ValueError:
        return {}


def _duration(seconds: float, s: dict, lang: str) -> str:
    if seconds >= 2 * 3600:
        return f"{_fmt(seconds / 3600, 1 if seconds % 3600 else 0, lang)} {s['hours']}"
    return f"{_fmt(seconds / 60, 0, lang)} {s['minutes']}"


def _method(comp, s, lang) -> list[str]:
    ref = comp.reference
    out = []
    if ref.heavyrain is not None:
        info = _read_json(ref.heavyrain / "run.json")
        p = info.get("parameters", {})
        grid = info.get("grid", {})
        res = grid.get("transform", [None])[0] if grid.get("transform") else grid.get("resolution_m")
        rain = p.get("rain") or {}
        total, dur = None, None
        if "times_s" in rain and "intensity_mm_per_h" in rain:
            t = np.asarray(rain["times_s"], float)
            i = np.asarray(rain["intensity_mm_per_h"], float)
            if len(t) > 1:
                total = float(np.sum(i[:-1] * np.diff(t)) / 3600.0)
                wet = np.flatnonzero(i[:-1] > 0)
                dur = float(t[wet[-1] + 1] - t[0]) if wet.size else 0.0
        if total is None:
            wb = info.get("water_balance", {})
            total_txt = f"{_fmt(wb.get('rain_m3'), 0, lang)} m³" if wb.get("rain_m3") is not None else "–"
        else:
            total_txt = f"{_fmt(total, 1, lang)} mm"
        bnd = p.get("boundary") or {}
        kinds = set(bnd.values()) if isinstance(bnd, dict) else set()
        if len(kinds) == 1 and f"boundary_{next(iter(kinds))}" in s:
            boundary = s[f"boundary_{next(iter(kinds))}"]
        elif kinds:
            boundary = ", ".join(f"{k}: {s.get('boundary_' + str(v), v)}" for k, v in bnd.items())
        else:
            boundary = "–"
        dr = p.get("drainage_mm_per_h") or 0
        drainage = s["drainage_rate"].format(v=_fmt(dr, 0, lang)) if dr else s["none"]
        err = info.get("water_balance", {}).get("relative_error")
        out.append(s["method_heavyrain"].format(
            res=_fmt(res, 1 if res and res % 1 else 0, lang) if res else "–", rain=total_txt,
            duration=_duration(dur, s, lang) if dur else "–",
            sim=_duration(float(p.get("duration_s", 0)), s, lang) if p.get("duration_s") else "–",
            boundary=boundary, drainage=drainage, error=f"{err:.1e}" if isinstance(err, (int, float)) else "–"))
    if ref.screening is not None:
        info = _read_json(ref.screening / "run.json")
        p = info.get("parameters", {})
        th = p.get("exposure_thresholds", {})
        out.append(s["method_screening"].format(rain=_fmt(p.get("rain_mm"), 0, lang),
                                                dm=_fmt(th.get("depth_medium_m", 0.1), 1, lang),
                                                dh=_fmt(th.get("depth_high_m", 0.3), 1, lang)))
    if ref.heat is not None:
        info = _read_json(ref.heat / "run.json")
        at = info.get("air_temperature") or {}
        method = str(at.get("method", ""))
        notes = " ".join(str(n) for n in (info.get("notes") or []) + (at.get("notes") or []))
        if method == "predictor_only_prior" or "no local readings" in notes:
            ta = s["ta_predictor_only"]
        elif method:
            ta = s["ta_kriging"].format(n=at.get("stations", "?"), method=method)
        else:
            ta = s["ta_none"]
        wind = info.get("wind_m_per_s", (info.get("weather") or {}).get("wind_m_per_s"))
        rh = info.get("rh_pct", (info.get("weather") or {}).get("rh_pct"))
        try:
            import xarray as xr

            with xr.open_dataset(ref.heat / "result.nc") as ds:
                if "utci" in ds:
                    wind = ds["utci"].attrs.get("wind_10m_m_per_s", wind)
                    rh = ds["utci"].attrs.get("rh_pct", rh)
        except (OSError, ValueError):
            pass
        tu = info.get("time_utc")
        if tu:
            try:
                import pandas as pd

                ts = pd.Timestamp(tu)
                ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
                tu = ts.strftime("%Y-%m-%d %H:%M UTC")
            except (ValueError, TypeError):
                tu = str(tu)
        out.append(s["method_heat"].format(time=tu or "–", ta_method=ta,
                                           wind=f"{_fmt(wind, 1, lang)} m/s" if wind is not None else "–",
                                           rh=f"{_fmt(rh, 0, lang)} %" if rh is not None else "–"))
    return out


# ------------------------------------------------------------------------------------------ sources
def _find_provenance(path: Path) -> Path | None:
    d = path if path.is_dir() else path.parent
    for _ in range(6):
        for name in ("PROVENANCE.md", "README.md"):
            if (d / name).exists():
                return d / name
        if (d / ".git").exists() or d.parent == d:
            return None
        d = d.parent
    return None


def _section(text: str, keys: Sequence[str]) -> str:
    """The markdown section (## heading) that names one of ``keys``, else the whole text."""
    parts = re.split(r"(?m)^(?=##\s)", text)
    for p in parts:
        head = p.splitlines()[0] if p.strip() else ""
        if any(k and k in head for k in keys):
            return p          # with its ### subsections
    return text


def _attribution(text: str) -> tuple[str | None, str | None]:
    flat = re.sub(r"\s*\n\s*", " ", text)
    att = re.search(r"Attribution[^:]{0,30}:\s*\**\s*(.+?)(?:\*\*|$)", flat)
    lic = re.search(r"Licen[cs]e[^:]{0,30}:\s*\**\s*(.+?)(?:\*\*|\. |\.$|$)", flat)

    def clean(m):
        if not m:
            return None
        v = m.group(1).strip().strip('"“”').rstrip(".").strip().strip('"“”').strip()
        return v or None

    return clean(att), clean(lic)


def _resolve(p: str, bases: Sequence[Path]) -> Path | None:
    q = Path(p)
    if q.is_absolute():
        return q if q.exists() else None
    for b in bases:
        if (b / q).exists():
            return (b / q).resolve()
    return None


def data_sources(scene_dir: str | os.PathLike | None, *, lang: str = "de", extra: Sequence[dict] = ()) -> list[dict]:
    """Data sources of a scene folder with their licence and attribution.

    For every source file the scene recorded (CityGML and terrain), the nearest ``PROVENANCE.md``
    or ``README.md`` above it is read; of the section naming the file's folder the
    ``Attribution: ...`` and ``Licence: ...`` texts are taken. Returns one dict per provenance
    section: ``what``, ``file`` (the provenance file), ``attribution``, ``licence``.
    """
    de = lang == "de"
    out: list[dict] = []
    if scene_dir is not None and (Path(scene_dir) / "scene.json").exists():
        meta = _read_json(Path(scene_dir) / "scene.json").get("metadata", {})
        repo = Path(__file__).resolve().parents[2]
        bases = [Path.cwd(), Path(scene_dir).resolve().parent, repo]
        groups: dict[tuple, dict] = {}
        kinds = [("citygml", s["path"]) for s in meta.get("sources", []) if "path" in s]
        kinds += [("terrain", p) for p in (meta.get("terrain") or {}).get("sources", [])]
        for kind, p in kinds:
            f = _resolve(p, bases)
            prov = _find_provenance(f) if f else None
            if prov is None:
                key = ("?", kind, p)
                groups.setdefault(key, {"what": (("Stadtmodell (CityGML)" if de else "City model (CityGML)")
                                                 if kind == "citygml" else ("Gelände" if de else "Terrain")) + f": {p}",
                                        "file": None, "attribution": Path(p).name,
                                        "licence": "Herkunft nicht dokumentiert" if de else "provenance not documented",
                                        "n": {}})
                continue
            folder_keys = [part for part in f.relative_to(prov.parent).parts[:-1]] + [f.parent.name]
            text = _section(prov.read_text(encoding="utf-8", errors="replace"), folder_keys)
            att, lic = _attribution(text)
            key = (str(prov), att, lic)
            g = groups.setdefault(key, {"file": _short(prov, bases), "attribution": att or prov.parent.name,
                                        "licence": lic, "n": {}})
            g["n"][kind] = g["n"].get(kind, 0) + 1
        for g in groups.values():
            n = g.pop("n")
            if "what" not in g:
                parts = []
                if n.get("citygml"):
                    parts.append((f"Stadtmodell: {n['citygml']} CityGML-Datei(en)" if de
                                  else f"city model: {n['citygml']} CityGML file(s)"))
                if n.get("terrain"):
                    parts.append((f"Geländemodell: {n['terrain']} Kachel(n)" if de else f"terrain: {n['terrain']} tile(s)"))
                g["what"] = "; ".join(parts)
            out.append(g)
    out.extend(dict(e) for e in extra)
    return out


def _model_sources(comp, lang: str) -> list[dict]:
    """Data behind the models' parameters that the runs used: the prior air-temperature coefficients
    fitted on Berlin station data (predictor-only heat runs)."""
    ref = comp.reference
    info = _read_json(ref.heat / "run.json") if ref.heat is not None else {}
    text = json.dumps(info.get("air_temperature") or {})
    if "predictor_only_prior" not in text or "berlin" not in text:
        return []
    de = lang == "de"
    return [{"what": ("Koeffizienten des Lufttemperatur-Prädiktormodells, angepasst an Stationsdaten aus Berlin "
                      "(twin.sim.heat.predictors)" if de else "coefficients of the air-temperature predictor "
                      "model, fitted on station data from Berlin (twin.sim.heat.predictors)"),
             "attribution": "UCO Berlin (TU Berlin, Fachgebiet Klimatologie), via LCZ4r (Anjos et al.)",
             "licence": "MIT (LCZ4r)", "file": None}]


def _short(p: Path, bases: Sequence[Path]) -> str:
    for b in bases:
        try:
            return str(p.resolve().relative_to(b.resolve()))
        except ValueError:
            continue
    return str(p)


# ------------------------------------------------------------------------------------------ render
def render_report(comparison, *, lang: str = "de", title: str | None = None, scene_name: str | None = None,
                  sources: Sequence[dict] | None = None, max_buildings: int = 50, notes: Sequence[str] = ()) -> str:
    """The report of a :class:`~twin.workflows.compare.Comparison` as one HTML string."""
    import jinja2

    s = _strings(lang)
    comp = comparison
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_DATA)), autoescape=jinja2.select_autoescape(["j2", "html"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    tpl = env.get_template("report.html.j2")
    head, rows, more = _building_rows(comp, s, lang, max_buildings)
    ring = comp.buildings.attrs.get("ring_m", 10.0)
    if sources is None:
        scene = next((r.scene for r in comp.runs if r.scene is not None), None)
        sources = data_sources(scene, lang=lang) + _model_sources(comp, lang)
    all_keys = list(comp.indicators.index)
    return tpl.render(
        lang=lang, s=s, title=title or s["title"], version=_version(), scene_name=scene_name,
        created=_dt.datetime.now().astimezone().strftime("%d.%m.%Y %H:%M" if lang == "de" else "%Y-%m-%d %H:%M"),
        runs=[{"id": r.id, "label": r.label, "models": r.models} for r in comp.runs],
        summary_rows=_indicator_rows(comp, [k for k in SUMMARY_KEYS if k in all_keys], s, lang),
        indicator_rows=_indicator_rows(comp, all_keys, s, lang),
        figures=_map_figures(comp, s, lang), chart=_indicator_chart(comp, s, lang),
        building_head=head, building_rows=rows,
        buildings_intro=s["buildings_intro"].format(ring=_fmt(ring, 0, lang)),
        buildings_more=s["buildings_more"].format(n=more) if more else "",
        method=_method(comp, s, lang), sources=list(sources),
        notes=[_note(n, s) for n in comp.notes] + list(notes))


def _note(text: str, s: dict) -> str:
    """A comparison note in the report's language (the known ones; others as they are)."""
    m = re.match(r"flooded areas leave out the (\d+) retention basin", text)
    if m:
        return s["note_basins"].format(n=m.group(1))
    m = re.match(r"run (\S+): the heat run has no air-temperature map", text)
    if m:
        return s["note_no_ta"].format(run=m.group(1))
    return text


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("twin")
    except PackageNotFoundError:
        return "unknown"


def write_report(workspace: str | os.PathLike | None, run_ids: Sequence, out: str | os.PathLike, *, lang: str = "de",
                 pdf: bool | str | os.PathLike = False, title: str | None = None, labels: Sequence[str] | None = None,
                 scene_name: str | None = None, sources: Sequence[dict] | None = None, overwrite: bool = True,
                 notes: Sequence[str] = (), comparison=None) -> ReportResult:
    """Compare ``run_ids`` (ids of ``workspace``'s runs, or run folders; the first is the reference)
    and write the council report to ``out`` (HTML).

    Parameters
    ----------
    lang : "de" or "en"
        Language of the report (German by default).
    pdf : bool or path
        Also print a PDF (``True``: next to the HTML with ``.pdf``) through headless Chromium; skipped
        with a message in :attr:`ReportResult.message` where Chromium is not installed.
    sources : list of dict, optional
        Data sources (``what``, ``attribution``, ``licence``, ``file``); default: read from the
        provenance files of the scene's sources (:func:`data_sources`).
    comparison : Comparison, optional
        An existing comparison to report instead of comparing ``run_ids`` again.
    """
    from twin.workflows.compare import compare_run_dirs

    _strings(lang)   # an unknown language fails before any work
    out = Path(out)
    if out.exists() and not overwrite:
        raise TwinIOError(f"{out} exists; pass overwrite=True or another file")
    comp = comparison or compare_run_dirs(list(run_ids), labels=labels, workspace=workspace)
    html = render_report(comp, lang=lang, title=title, scene_name=scene_name, sources=sources, notes=notes)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    result = ReportResult(out, comparison=comp)
    if pdf:
        target = out.with_suffix(".pdf") if pdf is True else Path(pdf)
        exe = find_chromium()
        if exe is None:
            result.message = ("PDF skipped: no Chromium found (install Debian's chromium, e.g. `make sysdeps`, "
                              "or open the HTML in a browser and print it)")
        else:
            result.pdf = print_pdf(out, target, chromium=exe)
    return result


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable (``TWIN_CHROMIUM`` overrides), or None."""
    env = os.environ.get("TWIN_CHROMIUM")
    if env:
        return env if Path(env).exists() or shutil.which(env) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        p = shutil.which(name)
        if p:
            return p
    return None


def print_pdf(html: str | os.PathLike, pdf: str | os.PathLike, *, chromium: str | None = None,
              timeout_s: float = 180.0) -> Path:
    """Print an HTML file to PDF with headless Chromium (A4 from the page's CSS, no header/footer)."""
    exe = chromium or find_chromium()
    if exe is None:
        raise ReportError("no Chromium found to print the PDF; install Debian's chromium (make sysdeps)")
    html, pdf = Path(html).resolve(), Path(pdf).resolve()
    pdf.parent.mkdir(parents=True, exist_ok=True)
    tmp_pdf = pdf.with_name(f".{pdf.name}.partial")
    with tempfile.TemporaryDirectory(prefix="twin-chromium-") as profile:
        cmd = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-extensions", "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
               "--no-pdf-header-footer", f"--print-to-pdf={tmp_pdf}", html.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise ReportError(f"Chromium did not print {html} within {timeout_s:.0f} s") from exc
    if proc.returncode != 0 or not tmp_pdf.exists() or tmp_pdf.stat().st_size == 0:
        raise ReportError(f"Chromium could not print {html} (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    os.replace(tmp_pdf, pdf)
    return pdf
