"""The council report: HTML content (tables, numbers, images, language) and the PDF's pages."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import numpy as np
import pytest

from .test_compare import footprints, make_runs


def _doc(path):
    import lxml.html

    return lxml.html.fromstring(path.read_bytes())


def _cells(doc, table_id_xpath):
    return [[("".join(td.itertext())).strip() for td in tr.xpath("./td")] for tr in doc.xpath(table_id_xpath)]


def _with_predictor_heat(ws):
    for rid in ("base", "plan"):
        p = ws / "runs" / rid / "heat" / "run.json"
        p.write_text(json.dumps({"svf_kind": "cosine", "time_utc": "2026-07-15 12:00:00+00:00",
                                 "air_temperature": {"method": "predictor_only_prior", "notes": ["no local readings"]}}))


def test_html_report_german(tmp_path):
    from twin.workflows import compare_runs
    from twin.workflows.report import write_report

    ws = make_runs(tmp_path)
    _with_predictor_heat(ws)
    comp = compare_runs(ws, ["base", "plan"], footprints=footprints())
    sources = [{"what": "Stadtmodell", "attribution": "Datenquelle: Testamt", "licence": "CC BY 4.0", "file": None}]
    res = write_report(ws, ["base", "plan"], tmp_path / "out" / "report.html", comparison=comp, sources=sources)
    assert res.pdf is None and res.html.exists()
    doc = _doc(res.html)
    assert doc.get("lang") == "de"
    assert doc.xpath("//h1")[0].text_content() == "Klimaanpassung: Vergleich von Szenarien"
    # the summary: flooded area above 0.5 m: 24 m2 -> 0 m2, change -24 (an improvement)
    row = doc.xpath('//section[@id="summary"]//tr[@data-key="flooded_area_gt_0.5m"]')[0]
    cells = [c.text_content().strip() for c in row.xpath("./td")]
    assert cells == ["Überflutete Fläche, Wassertiefe über 0,5 m", "m²", "24", "0", "−24"]
    assert "better" in row.xpath("./td")[-1].get("class")
    heat = doc.xpath('//section[@id="summary"]//tr[@data-key="air_temperature_mean"]/td')
    assert [c.text_content().strip() for c in heat][2:] == ["30,0", "28,0", "−2,0 K"]
    # every indicator of the comparison is in the full table
    keys = doc.xpath('//section[@id="indicators"]//tr/@data-key')
    assert keys == list(comp.indicators.index)
    # affected buildings: B1, 0.35 -> 0.25 m, exposure high -> medium, UTCI around it
    rows = _cells(doc, '//section[@id="buildings"]//tbody/tr')
    assert len(rows) == 1
    b1 = rows[0]
    assert b1[0] == "B1" and b1[1] == "Rathaus"
    assert b1[2:5] == ["0,35", "0,25", "−0,10"] and b1[5] == "hoch → mittel"
    assert b1[-1] == "−2,0"
    # maps: depth and UTCI (reference, scenario, difference) + the indicator chart, as PNG data URIs
    imgs = doc.xpath("//img/@src")
    assert len(imgs) == 3 and all(s.startswith("data:image/png;base64,") for s in imgs)
    for s in imgs:
        png = base64.b64decode(s.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert doc.xpath('//figure[@id="map-max_depth-plan"]') and doc.xpath('//figure[@id="map-utci-plan"]')
    # method: the predictor-only heat map says so; sources with their attribution
    method = doc.xpath('//section[@id="method"]')[0].text_content()
    assert "ohne lokale Messwerte" in method and "Bates et al. 2010" in method
    assert "Datenquelle: Testamt" in doc.xpath('//section[@id="sources"]')[0].text_content()
    # self-contained: nothing loaded from elsewhere
    assert not doc.xpath("//script[@src] | //link[@href] | //img[not(starts-with(@src, 'data:'))]")


def test_html_report_english_from_run_ids(tmp_path):
    from twin.workflows.report import write_report

    ws = make_runs(tmp_path)
    res = write_report(ws, ["base", "plan"], tmp_path / "report_en.html", lang="en")
    doc = _doc(res.html)
    assert doc.get("lang") == "en"
    assert doc.xpath("//h1")[0].text_content() == "Climate adaptation: scenario comparison"
    row = doc.xpath('//section[@id="summary"]//tr[@data-key="flooded_area_gt_0.1m"]/td')
    assert [c.text_content().strip() for c in row] == ["Flooded area, water depth above 0.1 m", "m²", "44", "44", "0"]
    labels = [c.text_content() for c in doc.xpath('//section[@id="runs"]//tbody/tr/td[2]')]
    assert labels == ["Bestand", "Schwammstadt"]
    assert "no air-temperature map" in doc.xpath('//section[@id="method"]')[0].text_content()
    with pytest.raises(Exception, match="language"):
        write_report(ws, ["base", "plan"], tmp_path / "x.html", lang="fr")


def test_data_sources_from_provenance(tmp_path):
    """Attribution and licence come from the README next to the scene's sources (its section)."""
    from twin.workflows.report import data_sources

    data = tmp_path / "data"
    (data / "city" / "lod2").mkdir(parents=True)
    (data / "city" / "lod2" / "a.gml").write_text("<x/>")
    (data / "README.md").write_text(
        "# Data\n\n## other: somewhere else\n\nAttribution: **Not this one.**\n\n"
        "## city: the sample\n\n**Licence: CC BY 4.0** (open data). **Attribution (required): \"Datenquelle: Amt für\n"
        "Vermessung, CC BY 4.0\".**\n")
    scene = tmp_path / "scene"
    scene.mkdir()
    (scene / "scene.json").write_text(json.dumps({"metadata": {"sources": [{"path": str(data / "city" / "lod2" / "a.gml")}],
                                                               "terrain": {"sources": ["missing/dgm.tif"]}}}))
    src = data_sources(scene, lang="en")
    assert src[0]["attribution"] == "Datenquelle: Amt für Vermessung, CC BY 4.0"
    assert src[0]["licence"] == "CC BY 4.0" and "1 CityGML file" in src[0]["what"]
    assert src[1]["licence"] == "provenance not documented" and "missing/dgm.tif" in src[1]["what"]


def test_sample_scene_attribution():
    """The shipped Munich sample names the Bavarian survey office as its README requires."""
    import pathlib

    from twin.workflows.report import _attribution, _section

    text = (pathlib.Path(__file__).resolve().parents[1] / "data" / "samples" / "README.md").read_text()
    att, lic = _attribution(_section(text, ["muenchen-tum"]))
    assert att == "Datenquelle: Bayerische Vermessungsverwaltung – www.geodaten.bayern.de, CC BY 4.0"
    assert lic == "CC BY 4.0"


def test_pdf_skipped_without_chromium(tmp_path, monkeypatch):
    from twin.workflows.report import write_report

    monkeypatch.setenv("TWIN_CHROMIUM", str(tmp_path / "no-such-chromium"))
    res = write_report(make_runs(tmp_path), ["base", "plan"], tmp_path / "r.html", pdf=True)
    assert res.pdf is None and "PDF skipped" in res.message and res.html.exists()


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm missing (poppler-utils: make sysdeps)")
def test_pdf_pages_not_blank(tmp_path):
    from PIL import Image

    from twin.workflows import compare_runs
    from twin.workflows.report import find_chromium, write_report

    if find_chromium() is None:
        pytest.skip("no Chromium (make sysdeps installs Debian's chromium)")
    ws = make_runs(tmp_path)
    comp = compare_runs(ws, ["base", "plan"], footprints=footprints())
    res = write_report(ws, ["base", "plan"], tmp_path / "report.html", pdf=True, comparison=comp)
    assert res.pdf is not None and res.pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(res.pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3
    for p in pages:
        a = np.asarray(Image.open(p).convert("L"))
        assert (a < 200).mean() > 0.002, f"{p.name} looks blank"
    # the map page holds colour (the depth and difference maps), not just text
    rgb = [np.asarray(Image.open(p).convert("RGB")).astype(int) for p in pages]
    colourful = [float((np.ptp(x, axis=2) > 60).mean()) for x in rgb]
    assert max(colourful) > 0.02
