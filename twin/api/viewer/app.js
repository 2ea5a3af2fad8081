// twin's offline viewer: CesiumJS from this server, tiles from the workspace (manifest.json of a
// run or a scene), building picking, flood snapshots on a time slider, split-screen comparison of
// two runs, sensor markers, runs started from the page, the view in the URL hash.
//
// For tests and scripts the page reports its state in the DOM:
//   body[data-ready]     "1" once the first view is loaded (or failed with a message)
//   body[data-gen]       bumped by every change of what is shown
//   body[data-idle-gen]  the data-gen whose tiles are all loaded and rendered (data-idle "1")
//   #status[data-pick]   JSON of the last picked building (gml_id, properties), "" when none
//   #status[data-state]  JSON of the view state (the URL hash's content)
//   #status[data-snapshot] snapshot index shown (-1: static result layers)
//   #status[data-errors] JSON list of errors the page met
//   #run-status[data-status|data-progress|data-run] the run started from the page
// and exposes window.twinViewer = {viewer, state, ...} for page.evaluate.

import { ApiError, apiKey, asList, del, followEvents, getJSON, postJSON, setApiKey } from "./api.js";
import { applyLabels, fieldLabel, formatNumber, formatTime, formatValue, lang, setLang, t } from "./i18n.js";
import { formatHash, parseHash } from "./state.js";

const Cesium = window.Cesium;
const $ = (id) => document.getElementById(id);
const statusEl = $("status");

let state = parseHash(location.hash);
const hashGivesLang = /[#&]lang=/.test(location.hash);
let viewer = null;
let runs = [];                 // run records from /api/runs
let scenes = [];               // scene summaries from /api/scenes
let config = {};               // /api/config
const tilesets = new Map();    // absolute tileset URL -> {promise, tileset}
let primary = null;            // {kind, id, base, manifest}
let compare = null;            // same, for the right side of the split
let pending = 0;               // tilesets being created
let gen = 0;
let applySeq = 0;
let picked = null;             // {feature, color}
let sensorSource = null;
let playTimer = null;
let lastHash = "";
let legendArgs = [null, null];  // the legend's layers (left, right), redrawn on a language change
const errors = [];

// ----------------------------------------------------------------------------- DOM state for tests
function reportError(text) {
  errors.push(String(text));
  statusEl.dataset.errors = JSON.stringify(errors);
}

function showMessage(text) {
  const el = $("message");
  el.textContent = text;
  el.hidden = !text;
  if (text) reportError(text);
}

window.addEventListener("error", (e) => reportError(e.message || String(e)));
window.addEventListener("unhandledrejection", (e) => reportError((e.reason && e.reason.message) || String(e.reason)));

function bump() {
  gen += 1;
  document.body.dataset.gen = String(gen);
  document.body.dataset.idle = "0";
  if (viewer) viewer.scene.requestRender();
}

function shownTilesets() {
  const out = [];
  for (const entry of tilesets.values()) if (entry.tileset && entry.tileset.show) out.push(entry.tileset);
  return out;
}

function checkIdle() {
  if (pending > 0) return;
  if (viewer.scene.globe.show && !viewer.scene.globe.tilesLoaded) return;
  if (!shownTilesets().every((ts) => ts.tilesLoaded)) return;
  document.body.dataset.idle = "1";
  document.body.dataset.idleGen = String(gen);
}

// -------------------------------------------------------------------------------------- the hash
function writeHash() {
  state.lang = lang();
  lastHash = formatHash(state);
  if (location.hash !== lastHash) history.replaceState(null, "", lastHash);
  statusEl.dataset.state = JSON.stringify(state);
}

function cameraState() {
  const c = viewer.camera.positionCartographic;
  return [Cesium.Math.toDegrees(c.longitude), Cesium.Math.toDegrees(c.latitude), c.height,
    Cesium.Math.toDegrees(viewer.camera.heading), Cesium.Math.toDegrees(viewer.camera.pitch),
    Cesium.Math.toDegrees(viewer.camera.roll)];
}

function setCamera(cam) {
  const [lon, lat, h, heading, pitch, roll] = cam;
  viewer.camera.setView({
    destination: Cesium.Cartesian3.fromDegrees(lon, lat, h),
    orientation: { heading: Cesium.Math.toRadians(heading), pitch: Cesium.Math.toRadians(pitch),
      roll: Cesium.Math.toRadians(roll) },
  });
}

// ------------------------------------------------------------------------------------- manifests
function sourceBase(kind, id) {
  return `/tiles/${kind === "run" ? "runs" : "scenes"}/${encodeURIComponent(id)}/`;
}

async function loadSource(kind, id) {
  const base = sourceBase(kind, id);
  const manifest = await getJSON(base + "manifest.json");
  return { kind, id, base, manifest };
}

function resultLayers(src) {
  return src ? src.manifest.layers.filter((l) => l.kind === "drape") : [];
}

function layerById(src, id) {
  return src ? src.manifest.layers.find((l) => l.id === id) : undefined;
}

function snapshotRun(src) {
  if (!src) return null;
  return (src.manifest.runs || []).find((r) => (r.snapshots || []).length > 0) || null;
}

/**
 * The selected result field (state.layer; a field name, so a link means the same in every run),
 * else the first depth-like drape's field, else the first drape's; "" for none.
 */
function selectedField(src) {
  if (state.layer === "none") return "";
  const drapes = resultLayers(src);
  if (state.layer && drapes.some((l) => l.field === state.layer)) return state.layer;
  const depth = drapes.find((l) => /depth/.test(l.field || "") && !/time/.test(l.field || ""));
  return (depth || drapes[0] || { field: "" }).field;
}

function drapeFor(src, field) {
  return field ? resultLayers(src).find((l) => l.field === field) || null : null;
}

/** Layers of `src` to show for the current state: [{layer, split}]. */
function wantedLayers(src, split) {
  if (!src) return [];
  const out = [];
  const find = (kind) => src.manifest.layers.find((l) => l.kind === kind);
  const buildings = find("buildings");
  if (buildings && !state.off.includes("buildings") && split !== "RIGHT") out.push({ layer: buildings, role: "buildings" });
  let drape = null;
  let water = null;
  const snaps = snapshotRun(src);
  if (state.t >= 0 && snaps) {
    const snap = snaps.snapshots[Math.min(state.t, snaps.snapshots.length - 1)];
    drape = snap.layers.find((l) => l.kind === "drape") || null;
    water = snap.layers.find((l) => l.kind === "water") || null;
  } else {
    drape = drapeFor(src, selectedField(primary));
    water = drape ? layerById(src, `${drape.id}/water`) || null : null;
  }
  if (drape) out.push({ layer: drape, role: "drape" });
  if (water && state.water && drape) out.push({ layer: water, role: "water" });
  // the terrain stays under a drape: drapes are transparent where there is nothing to show (dry)
  const terrain = find("terrain");
  if (terrain && !state.off.includes("terrain")) out.push({ layer: terrain, role: "terrain" });
  return out;
}

// -------------------------------------------------------------------------------------- tilesets
/** A small lift along the local vertical for drapes: they share the terrain's mesh and would z-fight. */
const DRAPE_LIFT_M = 0.3;

function lift(tileset, metres) {
  const centre = tileset.boundingSphere.center;
  const up = Cesium.Ellipsoid.WGS84.geodeticSurfaceNormal(centre, new Cesium.Cartesian3());
  tileset.modelMatrix = Cesium.Matrix4.fromTranslation(Cesium.Cartesian3.multiplyByScalar(up, metres, up));
}

function tilesetFor(url) {
  let entry = tilesets.get(url);
  if (entry) return entry.promise;
  entry = { promise: null, tileset: null };
  pending += 1;
  entry.promise = Cesium.Cesium3DTileset.fromUrl(url, { maximumScreenSpaceError: 16 })
    .then((ts) => {
      ts.show = false;
      viewer.scene.primitives.add(ts);
      entry.tileset = ts;
      ts.allTilesLoaded.addEventListener(() => viewer.scene.requestRender());
      return ts;
    })
    .catch((err) => {
      tilesets.delete(url);
      showMessage(`${t("load_error")}: ${url} (${err.message || err})`);
      return null;
    })
    .finally(() => {
      pending -= 1;
      viewer.scene.requestRender();
    });
  tilesets.set(url, entry);
  return entry.promise;
}

function buildingStyle(src) {
  if (!state.color || !src) return undefined;
  const prop = state.color;
  const layer = layerForProperty(src, prop);
  if (!layer) return undefined;
  const st = layer.style;
  const n = st.stops.length;
  const p = "${" + prop + "}";
  const conditions = [];
  for (let i = n - 1; i >= 0; i -= 1) {
    const v = st.vmin + ((st.vmax - st.vmin) * i) / Math.max(n - 1, 1);
    const [r, g, b] = st.stops[i];
    conditions.push([i === 0 ? `${p} > -1e300` : `${p} >= ${v}`, `rgb(${r}, ${g}, ${b})`]);
  }
  conditions.push(["true", "color('#d9d9d9')"]);
  return new Cesium.Cesium3DTileStyle({ color: { conditions } });
}

/** Show exactly the tilesets the state asks for (creating them on first use). */
async function applyState() {
  const seq = ++applySeq;
  bump();
  const splitting = Boolean(compare);
  const wanted = [
    ...wantedLayers(primary, splitting ? "LEFT" : "NONE").map((w) => ({ ...w, src: primary,
      split: splitting && w.role !== "buildings" ? "LEFT" : "NONE" })),
    ...(splitting ? wantedLayers(compare, "RIGHT").map((w) => ({ ...w, src: compare, split: "RIGHT" })) : []),
  ];
  const resolved = await Promise.all(wanted.map((w) => tilesetFor(new URL(w.src.base + w.layer.tileset,
    location.href).href)));
  if (seq !== applySeq) return;   // a newer change took over
  const show = new Set();
  resolved.forEach((ts, i) => {
    if (!ts) return;
    show.add(ts);
    ts.splitDirection = Cesium.SplitDirection[wanted[i].split];
    if (wanted[i].role === "drape" && !ts.lifted) {
      lift(ts, DRAPE_LIFT_M);
      ts.lifted = true;
    }
    if (wanted[i].role === "buildings") {
      const style = buildingStyle(wanted[i].src);
      if (ts.style !== style && (style || ts.style)) ts.style = style;
    }
  });
  for (const entry of tilesets.values()) if (entry.tileset) entry.tileset.show = show.has(entry.tileset);
  viewer.scene.splitPosition = state.split;
  statusEl.dataset.tilesets = String(show.size);
  statusEl.dataset.snapshot = String(state.t >= 0 && snapshotRun(primary) ? state.t : -1);
  legendArgs = [wanted.find((w) => w.role === "drape" && w.src === primary)?.layer,
    wanted.find((w) => w.role === "drape" && w.src === compare)?.layer];
  renderLegend(...legendArgs);
  renderTimebar();
  renderSplit();
  writeHash();
  bump();
}

// ------------------------------------------------------------------------------------ the panels
function option(value, text, selected) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  o.selected = selected;
  return o;
}

function runLabel(r) {
  const name = r.scenario_name || r.scenario_id || r.scenario || r.id;
  const when = r.finished || r.created || "";
  const date = when ? new Date(when) : null;
  const stamp = date && !Number.isNaN(date.getTime())
    ? date.toLocaleString(lang() === "de" ? "de-DE" : "en-GB", { dateStyle: "short", timeStyle: "short" }) : "";
  return stamp ? `${name} · ${stamp}` : name === r.id ? r.id : `${name} (${r.id})`;
}

function viewableRuns() {
  // finished runs whose tiles exist (links.tiles is null until the run's manifest is written)
  return runs.filter((r) => (!r.status || r.status === "done") && !(r.links && r.links.tiles === null));
}

function renderSourceSelect() {
  const sel = $("source");
  sel.replaceChildren();
  const current = primary ? `${primary.kind}:${primary.id}` : "";
  const group = (label) => {
    const g = document.createElement("optgroup");
    g.label = label;
    sel.append(g);
    return g;
  };
  const rs = viewableRuns();
  if (rs.length) {
    const g = group(t("run"));
    for (const r of rs) g.append(option(`run:${r.id}`, runLabel(r), current === `run:${r.id}`));
  }
  if (primary && primary.kind === "run" && !rs.some((r) => r.id === primary.id)) {
    sel.append(option(current, primary.id, true));
  }
  if (scenes.length) {
    const g = group(t("scene_only"));
    for (const s of scenes) g.append(option(`scene:${s.id}`, s.name || s.id, current === `scene:${s.id}`));
  }
  const cmp = $("compare");
  cmp.replaceChildren(option("", t("no_compare"), !state.cmp));
  for (const r of rs) {
    if (primary && primary.kind === "run" && r.id === primary.id) continue;
    cmp.append(option(r.id, runLabel(r), state.cmp === r.id));
  }
  if (state.cmp && !rs.some((r) => r.id === state.cmp)) cmp.append(option(state.cmp, state.cmp, true));
  $("compare-field").hidden = cmp.options.length < 2;
}

function renderLayerPanel() {
  const box = $("result-layers");
  box.replaceChildren();
  const drapes = resultLayers(primary);
  const current = selectedField(primary);
  const models = new Map();
  for (const l of drapes) {
    const model = l.id.split("/")[0];
    if (!models.has(model)) models.set(model, []);
    models.get(model).push(l);
  }
  const radio = (value, text, checked) => {
    const label = document.createElement("label");
    label.className = "check";
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "result-layer";
    input.value = value;
    input.checked = checked;
    input.addEventListener("change", () => {
      state.layer = value || "none";
      state.t = -1;
      stopPlay();
      renderLayerPanel();
      applyState();
    });
    const span = document.createElement("span");
    span.textContent = text;
    label.append(input, " ", span);
    return label;
  };
  box.append(radio("", t("none"), !current));
  for (const [model, layers] of models) {
    if (models.size > 1) {
      const h = document.createElement("div");
      h.className = "muted";
      h.textContent = modelLabel(model);
      box.append(h);
    }
    for (const l of layers) box.append(radio(l.field, fieldLabel(l.field), l.field === current && state.t < 0));
  }
  $("water-row").hidden = !drapes.some((l) => layerById(primary, `${l.id}/water`));
  $("show-water").checked = state.water;
  $("show-buildings").checked = !state.off.includes("buildings");
  $("show-terrain").checked = !state.off.includes("terrain");
  $("show-sensors").checked = state.sensors;
  $("show-globe").checked = state.globe;
  const colorSel = $("color-buildings");
  colorSel.replaceChildren(option("", t("none"), !state.color));
  for (const r of primary ? primary.manifest.runs || [] : []) {
    for (const name of r.building_properties || []) {
      const p = propId(name);                         // the id in the tiles' metadata
      if (!layerForProperty(primary, p)) continue;    // only values with a colour scale
      const u = propertyUnits(primary, p);
      colorSel.append(option(p, `${fieldLabel(u.field)} (${modelLabel(u.model)})`, state.color === p));
    }
  }
  $("color-row").hidden = colorSel.options.length < 2;
  $("notes").textContent = primary ? (primary.manifest.notes || []).join(" ") : "";
}

function renderLegend(layer, right) {
  const box = $("legend");
  const other = $("legend-right");
  other.hidden = true;
  if (!layer || !layer.style) {
    box.hidden = true;
    return;
  }
  // colours of two runs compare only on the same scale: say so when the right side's differs
  const rs = right && right.style;
  if (rs && (rs.vmin !== layer.style.vmin || rs.vmax !== layer.style.vmax || rs.colormap !== layer.style.colormap)) {
    other.textContent = `${t("right")}: ${t("other_scale")} ${formatValue(rs.vmin, rs.units)} – ${formatValue(rs.vmax, rs.units)}`;
    other.hidden = false;
  }
  const st = layer.style;
  const stops = st.stops.map((c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`).join(", ");
  $("legend-bar").style.background = `linear-gradient(to right, ${stops})`;
  $("legend-title").textContent = fieldLabel(layer.field);
  $("legend-min").textContent = formatValue(st.vmin, st.units);
  $("legend-mid").textContent = formatValue((st.vmin + st.vmax) / 2, st.units);
  $("legend-max").textContent = formatValue(st.vmax, st.units);
  box.hidden = false;
}

function renderTimebar() {
  const snaps = snapshotRun(primary);
  const bar = $("timebar");
  bar.hidden = !snaps;
  if (!snaps) return;
  const slider = $("time");
  slider.max = String(snaps.snapshots.length - 1);
  const showing = state.t >= 0;
  const i = showing ? Math.min(state.t, snaps.snapshots.length - 1) : snaps.snapshots.length - 1;
  slider.value = String(i);
  $("time-label").textContent = showing ? formatTime(snaps.snapshots[i].time_s) : t("peak");
  $("time-max").classList.toggle("active", !showing);
  $("play").textContent = playTimer ? "❚❚" : "▶";
  $("play").title = playTimer ? t("pause") : t("play");
}

function renderSplit() {
  const el = $("split");
  el.hidden = !compare;
  if (!compare) return;
  el.style.left = `${state.split * 100}%`;
  const name = (src) => {
    const r = runs.find((x) => x.id === src.id);
    return r ? runLabel(r) : src.id;
  };
  $("split-left").textContent = `◀ ${name(primary)}`;
  $("split-right").textContent = `${name(compare)} ▶`;
}

// -------------------------------------------------------------------------------------- picking
const MODELS = ["heavyrain", "screening", "heat"];
const UNIT_SUFFIXES = [["_m2_per_s", "m2 s-1"], ["_m_per_s", "m s-1"], ["_mm", "mm"], ["_m2", "m²"], ["_m", "m"],
  ["_s", "s"], ["_degc", "degC"], ["_c", "degC"], ["_k", "K"], ["_pct", "%"]];

/** A name as the tiles writer turns it into a metadata property id (twin.tiles.metadata.sanitize_id). */
function propId(name) {
  let id = String(name).replace(/[^0-9a-zA-Z_]/g, "_").replace(/^_+|_+$/g, "") || "property";
  if (/^[0-9]/.test(id)) id = "_" + id;
  return id;
}

function modelLabel(model) {
  return MODELS.includes(model) ? t(model) : t("building");
}

/**
 * What a building property of a run means: {model, field, units}, or null for a plain attribute.
 * Properties are `<manifest run>_<column>`; a column may name its model (`heavyrain_max_depth_m`)
 * and end in a unit suffix, or be a drape field's value at the building (`max_depth_max`).
 */
function propertyUnits(src, prop) {
  for (const r of src.manifest.runs || []) {
    const prefix = propId(r.id) + "_";
    if (!prop.startsWith(prefix)) continue;
    let rest = prop.slice(prefix.length);
    let model = r.id;
    const m = rest.match(/^(heavyrain|screening|heat)_(.+)$/);
    if (m) [, model, rest] = m;
    rest = rest.replace(/_(max|min)$/, "");
    let units = null;
    const layer = src.manifest.layers.find((l) => l.field === rest && l.style);
    if (layer) units = layer.style.units;
    else {
      for (const [suffix, u] of UNIT_SUFFIXES) {
        if (rest.endsWith(suffix) && rest.length > suffix.length) {
          rest = rest.slice(0, -suffix.length);
          units = u;
          break;
        }
      }
    }
    return { model, field: rest, units: units || "" };
  }
  return null;
}

/** The drape layer whose colours a building property should borrow (same field), if any. */
function layerForProperty(src, prop) {
  const u = propertyUnits(src, prop);
  if (!u) return null;
  const field = u.field === "max_depth" || u.field === "depth" ? "max_depth" : u.field;
  return src.manifest.layers.find((l) => l.kind === "drape" && l.field === field && l.style) || null;
}

const ATTRIBUTE_ORDER = ["gml_id", "type", "name", "function", "height", "roof_type", "storeys", "address"];

function row(table, label, value, cls = "") {
  const tr = document.createElement("tr");
  if (cls) tr.className = cls;
  const a = document.createElement("td");
  a.textContent = label;
  tr.append(a);
  if (value !== null) {
    const b = document.createElement("td");
    b.className = "value";
    b.textContent = value;
    tr.append(b);
  } else {
    a.colSpan = 2;
  }
  table.append(tr);
  return tr;
}

function clearPick() {
  if (picked) {
    try {
      picked.feature.color = picked.color;
    } catch {
      // the tile was unloaded
    }
  }
  picked = null;
  $("info-panel").hidden = true;
  $("hint").hidden = false;
  statusEl.dataset.pick = "";
  viewer.scene.requestRender();
}

function showBuilding(feature) {
  clearPick();
  const ids = feature.getPropertyIds();
  const props = {};
  for (const id of ids) props[id] = feature.getProperty(id);
  picked = { feature, color: Cesium.Color.clone(feature.color) };
  feature.color = Cesium.Color.fromCssColorString("#ffd54a");
  const attrs = $("info-attributes");
  const results = $("info-results");
  attrs.replaceChildren();
  results.replaceChildren();
  $("info-title").textContent = props.name && props.name !== props.gml_id ? props.name : "";
  const resultProps = new Map();
  for (const id of ids) {
    const u = primary && propertyUnits(primary, id);
    if (u) resultProps.set(id, u);
  }
  const ordered = [...ATTRIBUTE_ORDER.filter((k) => k in props), ...ids.filter((k) => !ATTRIBUTE_ORDER.includes(k)
    && !resultProps.has(k))];
  for (const k of ordered) {
    const v = props[k];
    if (v === undefined || v === null || v === "") continue;
    const shown = k === "height" ? formatValue(v, "m") : typeof v === "number" ? formatNumber(v) : String(v);
    row(attrs, t(k), shown).dataset.property = k;
  }
  let lastModel = null;
  for (const [k, u] of resultProps) {
    if (u.model !== lastModel) {
      row(results, modelLabel(u.model), null, "group");
      lastModel = u.model;
    }
    const tr = row(results, fieldLabel(u.field), formatValue(props[k], u.units));
    tr.dataset.property = k;
  }
  if (!resultProps.size) row(results, "–", null);
  $("info-panel").hidden = false;
  $("run-panel").hidden = true;
  $("hint").hidden = true;
  statusEl.dataset.pick = JSON.stringify({ gml_id: props.gml_id, properties: props, source: primary && primary.id });
  viewer.scene.requestRender();
}

function onClick(movement) {
  const hit = viewer.scene.pick(movement.position);
  if (hit instanceof Cesium.Cesium3DTileFeature && hit.getProperty("gml_id") !== undefined) showBuilding(hit);
  else clearPick();
}

// -------------------------------------------------------------------------------------- sensors
function sensorItems(body) {
  // /api/sensors: {available, items: [{thing, name, property, unit, lon, lat, time, value, flags, flag_names}]}
  const stations = new Map();
  for (const it of asList(body, "sensors", "readings")) {
    const lon = it.lon ?? it.longitude;
    const lat = it.lat ?? it.latitude;
    if (!Number.isFinite(lon) || !Number.isFinite(lat)) continue;
    const key = it.thing || `${lon.toFixed(5)},${lat.toFixed(5)}`;
    if (!stations.has(key)) stations.set(key, { name: it.thing || it.name || key, lon, lat, values: [] });
    if (it.value !== undefined && it.value !== null) {
      stations.get(key).values.push({ property: it.property || it.name || "", value: it.value, unit: it.unit || "",
        time: it.time || "", flags: it.flags || 0, flagNames: it.flag_names || [] });
    }
  }
  return [...stations.values()];
}

function sensorLine(v) {
  const unit = v.unit === "degC" ? "°C" : v.unit === "%" || v.unit === "percent" ? "%" : v.unit === "mm" ? "mm"
    : v.unit === "mm/h" || v.unit === "mm h-1" ? "mm/h" : v.unit;
  const flag = v.flags ? ` ⚠ ${v.flagNames.map((f) => t(`flag_${f}`)).join(", ")}` : "";
  return `${fieldLabel(v.property)}: ${typeof v.value === "number" ? formatNumber(v.value, 1) : v.value} ${unit}${flag}`;
}

function groundHeight(src) {
  // the manifest's root transform is the local frame at the scene origin: its translation is on the ground
  const m = src && src.manifest.root_transform;
  if (!m) return 0;
  return Cesium.Cartographic.fromCartesian(new Cesium.Cartesian3(m[12], m[13], m[14])).height;
}

async function loadSensors() {
  if (sensorSource) {
    viewer.dataSources.remove(sensorSource, true);
    sensorSource = null;
  }
  let stations = [];
  try {
    stations = sensorItems(await getJSON("/api/sensors"));
  } catch (err) {
    if (!(err instanceof ApiError) || ![401, 403, 404, 501].includes(err.status)) reportError(`sensors: ${err.message}`);
    stations = [];
  }
  $("sensors-row").hidden = !stations.length;
  statusEl.dataset.sensors = String(stations.length);
  if (!stations.length) return;
  sensorSource = new Cesium.CustomDataSource("sensors");
  const h = groundHeight(primary) + 12;
  for (const s of stations) {
    const lines = s.values.map(sensorLine);
    sensorSource.entities.add({
      name: s.name,
      position: Cesium.Cartesian3.fromDegrees(s.lon, s.lat, h),
      point: { pixelSize: 11, color: Cesium.Color.fromCssColorString("#e8590c"), outlineColor: Cesium.Color.WHITE,
        outlineWidth: 2, disableDepthTestDistance: Number.POSITIVE_INFINITY },
      label: { text: [s.name, ...lines].join("\n"), font: "13px DejaVu Sans, sans-serif", showBackground: true,
        backgroundColor: Cesium.Color.fromCssColorString("rgba(29,39,51,0.8)"), pixelOffset: new Cesium.Cartesian2(0, -18),
        verticalOrigin: Cesium.VerticalOrigin.BOTTOM, disableDepthTestDistance: Number.POSITIVE_INFINITY },
    });
  }
  sensorSource.show = state.sensors;
  await viewer.dataSources.add(sensorSource);
  viewer.scene.requestRender();
}

// ---------------------------------------------------------------------------------- time slider
function stopPlay() {
  if (playTimer) clearTimeout(playTimer);
  playTimer = null;
}

function waitIdle() {
  return new Promise((resolve) => {
    const target = gen;
    const poll = () => (Number(document.body.dataset.idleGen) >= target ? resolve() : setTimeout(poll, 100));
    poll();
  });
}

async function playStep() {
  const snaps = snapshotRun(primary);
  if (!snaps || !playTimer) return;
  state.t = state.t < 0 || state.t >= snaps.snapshots.length - 1 ? 0 : state.t + 1;
  await applyState();
  await waitIdle();
  if (playTimer) playTimer = setTimeout(playStep, 900);
}

// ------------------------------------------------------------------------------- starting a run
async function loadScenarios() {
  const sel = $("run-scenario");
  sel.replaceChildren();
  try {
    const list = asList(await getJSON("/api/scenarios"), "scenarios");
    for (const s of list) sel.append(option(s.id, s.name || s.id, false));
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) sel.append(option("", t("unauthorized"), true));
  }
  if (!sel.options.length) sel.append(option("", t("no_scenarios"), true));
  $("run-start").disabled = !sel.value;
}

function setRunStatus(run, status, progress, message) {
  const el = $("run-status");
  el.dataset.run = run || "";
  el.dataset.status = status || "";
  el.dataset.progress = String(progress ?? 0);
  const log = JSON.parse(el.dataset.progressLog || "[]");
  if (status && log[log.length - 1] !== progress) log.push(progress ?? 0);
  el.dataset.progressLog = JSON.stringify(log);
  const bar = $("run-progress");
  bar.hidden = !status;
  bar.value = progress ?? 0;
  const pct = progress !== undefined && progress !== null ? ` ${Math.round(progress * 100)} %` : "";
  const note = message && message !== status ? ` – ${message}` : "";
  el.textContent = status ? `${t(status)}${pct}${note}` : message || "";
  $("run-cancel").hidden = !(status === "queued" || status === "running");
}

let runAbort = null;

async function startRun() {
  const scenario = $("run-scenario").value;
  if (!scenario) return;
  setApiKey($("api-key").value.trim());
  const models = [...document.querySelectorAll("#run-models input:checked")].map((i) => i.value);
  let record;
  try {
    record = await postJSON("/api/runs", { scenario, models: models.length ? models : undefined });
  } catch (err) {
    setRunStatus("", "failed", 0, err.status === 401 || err.status === 403 ? t("unauthorized") : err.message);
    return;
  }
  const id = record.id || record.run_id;
  $("run-status").dataset.progressLog = "[]";
  setRunStatus(id, record.status || "queued", record.progress || 0, record.message || "");
  await watchRun(id);
}

async function watchRun(id) {
  if (runAbort) runAbort.abort();
  runAbort = new AbortController();
  let final = null;
  let snapshotsSeen = 0;
  try {
    await followEvents(`/api/runs/${encodeURIComponent(id)}/events`, (ev) => {
      const d = typeof ev.data === "object" && ev.data ? ev.data : {};
      if (ev.event === "progress" || ev.event === "end") {
        setRunStatus(id, d.status || "running", d.progress ?? 0, d.message || d.error || "");
        if (["done", "failed", "cancelled", "interrupted"].includes(d.status)) final = d.status;
      } else if (ev.event === "snapshot") {
        snapshotsSeen += 1;
        $("run-status").dataset.snapshots = String(snapshotsSeen);
        if (primary && primary.kind === "run" && primary.id === id) refreshPrimary();
      }
    }, { signal: runAbort.signal });
  } catch (err) {
    if (err.name !== "AbortError") reportError(`events: ${err.message}`);
  }
  // the stream ended: the record says how
  try {
    const rec = await getJSON(`/api/runs/${encodeURIComponent(id)}`);
    final = rec.status || final;
    setRunStatus(id, final, rec.progress ?? 1, rec.error || rec.message || "");
  } catch (err) {
    reportError(`run ${id}: ${err.message}`);
  }
  if (final === "done") {
    await loadRuns();
    await switchSource("run", id);
  }
}

async function refreshPrimary() {
  try {
    primary = await loadSource(primary.kind, primary.id);
    renderLayerPanel();
    await applyState();
  } catch (err) {
    reportError(err.message);
  }
}

// --------------------------------------------------------------------------------------- sources
async function loadRuns() {
  try {
    runs = asList(await getJSON("/api/runs"), "runs");
  } catch (err) {
    runs = [];
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) showMessage(t("unauthorized"));
  }
  runs.sort((a, b) => String(b.finished || b.created || "").localeCompare(String(a.finished || a.created || "")));
  renderSourceSelect();
}

async function loadScenes() {
  try {
    scenes = asList(await getJSON("/api/scenes"), "scenes").map((s) => (typeof s === "string" ? { id: s } : s));
  } catch {
    scenes = [];
  }
}

async function switchSource(kind, id) {
  try {
    primary = await loadSource(kind, id);
  } catch (err) {
    showMessage(`${t("load_error")}: ${kind} ${id} (${err.message})`);
    return false;
  }
  state.run = kind === "run" ? id : "";
  state.scene = kind === "scene" ? id : "";
  if (state.cmp === id) {
    state.cmp = "";
    compare = null;
  }
  if (state.t >= 0 && !snapshotRun(primary)) state.t = -1;
  clearPick();
  renderSourceSelect();
  renderLayerPanel();
  await applyState();
  return true;
}

async function setCompare(id) {
  state.cmp = id;
  compare = null;
  if (id) {
    try {
      compare = await loadSource("run", id);
    } catch (err) {
      showMessage(`${t("load_error")}: ${id} (${err.message})`);
      state.cmp = "";
    }
  }
  await applyState();
}

/** What to show first: the hash's run or scene, else the newest finished run, else the first scene. */
async function initialSource() {
  const tries = [];
  if (state.run) tries.push(["run", state.run]);
  if (state.scene) tries.push(["scene", state.scene]);
  for (const r of viewableRuns()) tries.push(["run", r.id]);
  for (const s of scenes) tries.push(["scene", s.id]);
  for (const [kind, id] of tries) {
    try {
      primary = await loadSource(kind, id);
      state.run = kind === "run" ? id : "";
      state.scene = kind === "scene" ? id : "";
      return true;
    } catch (err) {
      if (kind === tries[0][0] && id === tries[0][1] && (state.run || state.scene)) {
        showMessage(`${t("load_error")}: ${kind} ${id} (${err.message})`);
      }
    }
  }
  return false;
}

function homeView() {
  // the widest tileset shown (terrain or a drape of it) frames the whole scene
  const shown = shownTilesets();
  if (!shown.length) return;
  const bs = shown.reduce((a, b) => (b.boundingSphere.radius > a.boundingSphere.radius ? b : a)).boundingSphere;
  viewer.camera.viewBoundingSphere(bs, new Cesium.HeadingPitchRange(Cesium.Math.toRadians(25),
    Cesium.Math.toRadians(-38), bs.radius * 1.55));
  viewer.camera.lookAtTransform(Cesium.Matrix4.IDENTITY);
}

// ------------------------------------------------------------------------------------- start-up
function createViewer() {
  Cesium.Ion.defaultAccessToken = "";
  viewer = new Cesium.Viewer("cesium", {
    // no imagery until the globe is switched on (then the bundled NaturalEarthII, see showGlobe)
    baseLayer: false,
    terrainProvider: new Cesium.EllipsoidTerrainProvider(),
    geocoder: false, baseLayerPicker: false, homeButton: false, sceneModePicker: false,
    navigationHelpButton: false, animation: false, timeline: false, fullscreenButton: false,
    infoBox: false, selectionIndicator: false, shouldAnimate: false, skyBox: false, skyAtmosphere: false,
    requestRenderMode: true, maximumRenderTimeChange: Number.POSITIVE_INFINITY,
    contextOptions: { webgl: { preserveDrawingBuffer: true, alpha: true } },
  });
  // a fixed summer late morning: the same shading whatever the local time is
  viewer.clock.currentTime = Cesium.JulianDate.fromIso8601("2026-07-15T09:30:00Z");
  const scene = viewer.scene;
  // The city floats on a sky-to-ground gradient (CSS behind a transparent canvas) instead of the
  // globe: the model's heights are ellipsoidal (Munich: ~560 m above a bare ellipsoid globe), and a globe
  // without terrain keeps loading tiles (and redrawing) for nothing a council member looks at.
  scene.backgroundColor = Cesium.Color.TRANSPARENT;
  scene.globe.show = false;
  if (scene.sun) scene.sun.show = false;
  if (scene.moon) scene.moon.show = false;
  viewer.scene.postRender.addEventListener(checkIdle);
  new Cesium.ScreenSpaceEventHandler(viewer.scene.canvas).setInputAction(onClick, Cesium.ScreenSpaceEventType.LEFT_CLICK);
  viewer.camera.moveEnd.addEventListener(() => {
    state.cam = cameraState();
    writeHash();
    bump();
  });
  drawOnDemand();
}

/**
 * Our own frame loop instead of Cesium's: a frame only while something changes (a render request,
 * tiles loading, the user moving the camera, and a little after for inertia and moveEnd). Cesium's
 * loop, even in request-render mode, redrew every frame here (its camera check saw a change each
 * frame), which costs a laptop battery and, with software WebGL, the whole CPU.
 */
function drawOnDemand() {
  const scene = viewer.scene;
  let until = 0;
  const keep = (ms) => {
    until = Math.max(until, performance.now() + ms);
  };
  const request = scene.requestRender.bind(scene);
  scene.requestRender = () => {
    keep(120);
    request();
  };
  for (const type of ["pointerdown", "pointermove", "pointerup", "wheel", "keydown", "touchmove"]) {
    viewer.canvas.addEventListener(type, (e) => {
      if (type !== "pointermove" || e.buttons) keep(1500);
    }, { passive: true });
  }
  window.addEventListener("resize", () => keep(300));
  viewer.useDefaultRenderLoop = false;
  const frame = () => {
    if (!viewer.isDestroyed()) {
      if (performance.now() < until || document.body.dataset.idle !== "1") {
        try {
          viewer.resize();
          viewer.render();
        } catch (err) {
          reportError(`render: ${err.message || err}`);
        }
      }
      requestAnimationFrame(frame);
    }
  };
  keep(500);
  requestAnimationFrame(frame);
}

function wireControls() {
  $("source").addEventListener("change", (e) => {
    const [kind, ...rest] = e.target.value.split(":");
    switchSource(kind, rest.join(":"));
  });
  $("compare").addEventListener("change", (e) => setCompare(e.target.value));
  $("show-buildings").addEventListener("change", (e) => toggleOff("buildings", !e.target.checked));
  $("show-globe").addEventListener("change", (e) => {
    state.globe = e.target.checked;
    showGlobe(state.globe);
    writeHash();
  });
  $("show-terrain").addEventListener("change", (e) => toggleOff("terrain", !e.target.checked));
  $("show-water").addEventListener("change", (e) => {
    state.water = e.target.checked;
    applyState();
  });
  $("show-sensors").addEventListener("change", (e) => {
    state.sensors = e.target.checked;
    if (sensorSource) sensorSource.show = state.sensors;
    writeHash();
    bump();
  });
  $("color-buildings").addEventListener("change", (e) => {
    state.color = e.target.value;
    applyState();
  });
  $("time").addEventListener("input", (e) => {
    stopPlay();
    state.t = Number(e.target.value);
    applyState();
  });
  $("time-max").addEventListener("click", () => {
    stopPlay();
    state.t = -1;
    renderLayerPanel();
    applyState();
  });
  $("play").addEventListener("click", () => {
    if (playTimer) {
      stopPlay();
      renderTimebar();
    } else {
      playTimer = setTimeout(playStep, 0);
      renderTimebar();
    }
  });
  $("lang").addEventListener("click", () => {
    setLang(lang() === "de" ? "en" : "de");
    relabel();
  });
  $("share").addEventListener("click", async () => {
    writeHash();
    try {
      await navigator.clipboard.writeText(location.href);
    } catch {
      // no clipboard (insecure context): the address bar has the link
    }
    const b = $("share");
    b.textContent = t("copied");
    setTimeout(() => (b.textContent = t("share")), 1500);
  });
  $("info-close").addEventListener("click", clearPick);
  $("new-run-toggle").addEventListener("click", () => {
    const panel = $("run-panel");
    panel.hidden = !panel.hidden;
    if (!panel.hidden) {
      $("info-panel").hidden = true;
      $("api-key").value = apiKey();
      loadScenarios();
    }
  });
  $("run-start").addEventListener("click", startRun);
  $("run-cancel").addEventListener("click", async () => {
    const id = $("run-status").dataset.run;
    if (!id) return;
    try {
      await del(`/api/runs/${encodeURIComponent(id)}`);
    } catch (err) {
      reportError(err.message);
    }
  });
  // the split handle
  const handle = $("split-handle");
  let dragging = false;
  handle.addEventListener("pointerdown", (e) => {
    dragging = true;
    handle.setPointerCapture(e.pointerId);
  });
  handle.addEventListener("pointermove", (e) => {
    if (!dragging) return;
    state.split = Math.min(0.95, Math.max(0.05, e.clientX / window.innerWidth));
    viewer.scene.splitPosition = state.split;
    renderSplit();
    viewer.scene.requestRender();
  });
  handle.addEventListener("pointerup", () => {
    dragging = false;
    writeHash();
    bump();
  });
  window.addEventListener("hashchange", async () => {
    if (location.hash === lastHash) return;
    const next = parseHash(location.hash);
    const sourceChanged = next.run !== state.run || next.scene !== state.scene;
    const cmpChanged = next.cmp !== state.cmp;
    state = next;
    setLang(state.lang);
    relabel();
    if (state.cam) setCamera(state.cam);
    if (sourceChanged) await switchSource(state.run ? "run" : "scene", state.run || state.scene);
    if (cmpChanged) await setCompare(state.cmp);
    else await applyState();
  });
}

let globeLayer = null;

/** The globe with the NaturalEarthII imagery bundled with CesiumJS (context when zoomed out). */
async function showGlobe(on) {
  const scene = viewer.scene;
  if (on && !globeLayer) {
    globeLayer = Cesium.ImageryLayer.fromProviderAsync(
      Cesium.TileMapServiceImageryProvider.fromUrl(Cesium.buildModuleUrl("Assets/Textures/NaturalEarthII")));
    viewer.imageryLayers.add(globeLayer);
  }
  scene.globe.show = on;
  if (!scene.skyAtmosphere && on) scene.skyAtmosphere = new Cesium.SkyAtmosphere();
  if (scene.skyAtmosphere) scene.skyAtmosphere.show = on;
  scene.backgroundColor = on ? Cesium.Color.BLACK : Cesium.Color.TRANSPARENT;
  bump();
}

function toggleOff(name, off) {
  state.off = state.off.filter((x) => x !== name);
  if (off) state.off.push(name);
  applyState();
}

function relabel() {
  applyLabels();
  document.title = t("title");
  renderSourceSelect();
  renderLayerPanel();
  renderTimebar();
  renderSplit();
  renderLegend(...legendArgs);
  if (picked) showBuilding(picked.feature);
  writeHash();
}

async function main() {
  setLang(state.lang);
  applyLabels();
  document.title = t("title");
  createViewer();
  wireControls();
  window.twinViewer = { viewer, get state() { return state; }, get primary() { return primary; },
    get compare() { return compare; }, applyState, switchSource, setCompare, Cesium };
  try {
    config = await getJSON("/api/config");
  } catch {
    config = {};
  }
  if (!hashGivesLang && config.default_language) {
    setLang(config.default_language);
    applyLabels();
  }
  $("api-key-row").hidden = config.write_needs_key === false;
  if (Array.isArray(config.models) && config.models.length) {
    const box = $("run-models");
    for (const input of box.querySelectorAll("input")) input.closest("label").hidden = !config.models.includes(input.value);
  }
  await Promise.all([loadRuns(), loadScenes()]);
  if (!(await initialSource())) {
    showMessage(t("no_data"));
    renderSourceSelect();
    document.body.dataset.ready = "1";
    return;
  }
  if (state.cmp) {
    try {
      compare = await loadSource("run", state.cmp);
    } catch (err) {
      showMessage(`${t("load_error")}: ${state.cmp} (${err.message})`);
      state.cmp = "";
    }
  }
  renderSourceSelect();
  renderLayerPanel();
  if (state.globe) showGlobe(true);
  await applyState();
  if (state.cam) setCamera(state.cam);
  else homeView();
  state.cam = cameraState();
  await loadSensors();
  writeHash();
  bump();
  await waitIdle();
  document.body.dataset.ready = "1";
}

main().catch((err) => {
  showMessage(`${t("load_error")}: ${err.message || err}`);
  document.body.dataset.ready = "1";
});
