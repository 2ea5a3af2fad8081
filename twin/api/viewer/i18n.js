// German and English labels. German is the default; `lang` in the URL hash or the toggle switches.
// Every visible label goes through t(); elements carry data-i18n (text), data-i18n-title (tooltip)
// or data-i18n-placeholder and are relabelled by applyLabels().

export const LANGS = ["de", "en"];

const LABELS = {
  de: {
    title: "Stadtzwilling",
    subtitle: "Starkregen · Hitze · Sensoren",
    view: "Ansicht",
    run: "Berechnung",
    scene: "Stadtmodell",
    scene_only: "nur Stadtmodell",
    layers: "Ebenen",
    buildings: "Gebäude",
    terrain: "Gelände",
    result: "Ergebnis",
    none: "keines",
    water_surface: "Wasseroberfläche",
    sensors: "Sensoren",
    globe: "Globus (Natural Earth)",
    color_buildings: "Gebäude nach Ergebnis einfärben",
    legend: "Legende",
    time: "Zeit",
    play: "Abspielen",
    pause: "Anhalten",
    maximum: "Maximum",
    after: "nach",
    compare: "Vergleich",
    compare_with: "Vergleichen mit",
    no_compare: "kein Vergleich",
    left: "links",
    other_scale: "andere Farbskala",
    right: "rechts",
    share: "Link kopieren",
    copied: "Link kopiert",
    language: "English",
    building: "Gebäude",
    attributes: "Merkmale",
    results: "Ergebnisse",
    close: "Schließen",
    click_hint: "Gebäude anklicken für Merkmale und Ergebnisse",
    new_run: "Neue Berechnung",
    scenario: "Szenario",
    models: "Modelle",
    api_key: "API-Schlüssel",
    api_key_hint: "nur nötig, wenn der Server einen verlangt",
    start: "Starten",
    cancel: "Abbrechen",
    queued: "wartet",
    running: "läuft",
    done: "fertig",
    failed: "fehlgeschlagen",
    cancelled: "abgebrochen",
    interrupted: "unterbrochen",
    no_scenarios: "Keine Szenarien im Arbeitsbereich",
    no_data: "Keine Daten im Arbeitsbereich: erst ein Stadtmodell importieren und Kacheln schreiben.",
    load_error: "Laden fehlgeschlagen",
    unauthorized: "Zugriff verweigert: API-Schlüssel prüfen",
    sensor_latest: "letzter Wert",
    heavyrain: "Starkregen",
    screening: "Fließwege (Schnellanalyse)",
    heat: "Hitze",
    gml_id: "gml:id",
    type: "Objektart",
    name: "Name",
    function: "Funktion",
    height: "Höhe",
    roof_type: "Dachform",
    storeys: "Geschosse",
    address: "Adresse",
    // result fields
    max_depth: "Max. Wassertiefe",
    depth: "Wassertiefe",
    max_speed: "Max. Fließgeschwindigkeit",
    arrival_time: "Ankunftszeit des Wassers",
    time_of_max_depth: "Zeitpunkt der max. Tiefe",
    duration_above_threshold: "Überflutungsdauer",
    hazard_rating: "Gefährdung d·(v+0,5)",
    flow_direction: "Fließrichtung",
    velocity_east_at_max_speed: "Geschwindigkeit Ost",
    velocity_north_at_max_speed: "Geschwindigkeit Nord",
    flow_accumulation: "Fließakkumulation",
    filled_depth: "Senkentiefe",
    ponded_depth: "Aufstauhöhe",
    exposure: "Gefährdungsklasse",
    svf: "Himmelssichtfaktor",
    sky_view_factor: "Himmelssichtfaktor",
    shadow: "Schatten",
    air_temperature: "Lufttemperatur",
    air_temperature_se: "Standardfehler Lufttemperatur",
    uhi: "Wärmeinsel",
    utci: "Gefühlte Temperatur (UTCI)",
    tmrt: "Mittlere Strahlungstemperatur",
    footprint: "Grundfläche",
    green_roof: "Gründach",
    roof_retention: "Rückhalt auf dem Dach",
    hazard: "Gefährdung d·(v+0,5)",
    yes: "ja",
    no: "nein",
    // sensors and their QC flags
    precipitation: "Niederschlag",
    relative_humidity: "Rel. Luftfeuchte",
    water_level: "Wasserstand",
    peak: "Höchststand (ganzes Ereignis)",
    max_short: "Max.",
    flag_range: "unplausibel",
    flag_spike: "Sprung",
    flag_stuck: "hängt",
    flag_stale: "veraltet",
    flag_future: "Zeit in der Zukunft",
    flag_spatial_outlier: "weicht von Nachbarn ab",
    flag_server_quality: "Qualität laut Server schlecht",
  },
  en: {
    title: "City twin",
    subtitle: "Heavy rain · Heat · Sensors",
    view: "View",
    run: "Run",
    scene: "City model",
    scene_only: "city model only",
    layers: "Layers",
    buildings: "Buildings",
    terrain: "Terrain",
    result: "Result",
    none: "none",
    water_surface: "Water surface",
    sensors: "Sensors",
    globe: "Globe (Natural Earth)",
    color_buildings: "Colour buildings by result",
    legend: "Legend",
    time: "Time",
    play: "Play",
    pause: "Pause",
    maximum: "Maximum",
    after: "after",
    compare: "Compare",
    compare_with: "Compare with",
    no_compare: "no comparison",
    left: "left",
    other_scale: "other colour scale",
    right: "right",
    share: "Copy link",
    copied: "Link copied",
    language: "Deutsch",
    building: "Building",
    attributes: "Attributes",
    results: "Results",
    close: "Close",
    click_hint: "Click a building for its attributes and results",
    new_run: "New run",
    scenario: "Scenario",
    models: "Models",
    api_key: "API key",
    api_key_hint: "only needed when the server asks for one",
    start: "Start",
    cancel: "Cancel",
    queued: "queued",
    running: "running",
    done: "done",
    failed: "failed",
    cancelled: "cancelled",
    interrupted: "interrupted",
    no_scenarios: "No scenarios in the workspace",
    no_data: "Nothing in the workspace yet: import a city model and write its tiles first.",
    load_error: "Loading failed",
    unauthorized: "Access denied: check the API key",
    sensor_latest: "latest value",
    heavyrain: "Heavy rain",
    screening: "Flow paths (screening)",
    heat: "Heat",
    gml_id: "gml:id",
    type: "Object type",
    name: "Name",
    function: "Function",
    height: "Height",
    roof_type: "Roof type",
    storeys: "Storeys",
    address: "Address",
    max_depth: "Max. water depth",
    depth: "Water depth",
    max_speed: "Max. flow speed",
    arrival_time: "Water arrival time",
    time_of_max_depth: "Time of max. depth",
    duration_above_threshold: "Flooding duration",
    hazard_rating: "Hazard d·(v+0.5)",
    flow_direction: "Flow direction",
    velocity_east_at_max_speed: "Velocity east",
    velocity_north_at_max_speed: "Velocity north",
    flow_accumulation: "Flow accumulation",
    filled_depth: "Depression depth",
    ponded_depth: "Ponding depth",
    exposure: "Exposure class",
    svf: "Sky view factor",
    sky_view_factor: "Sky view factor",
    shadow: "Shade",
    air_temperature: "Air temperature",
    air_temperature_se: "Air temperature standard error",
    uhi: "Urban heat island",
    utci: "Felt temperature (UTCI)",
    tmrt: "Mean radiant temperature",
    footprint: "Footprint",
    green_roof: "Green roof",
    roof_retention: "Roof retention",
    hazard: "Hazard d·(v+0.5)",
    yes: "yes",
    no: "no",
    precipitation: "Precipitation",
    relative_humidity: "Relative humidity",
    water_level: "Water level",
    peak: "Peak (whole event)",
    max_short: "Max.",
    flag_range: "implausible",
    flag_spike: "spike",
    flag_stuck: "stuck",
    flag_stale: "stale",
    flag_future: "time in the future",
    flag_spatial_outlier: "differs from neighbours",
    flag_server_quality: "bad quality (server)",
  },
};

let current = "de";

export function setLang(lang) {
  current = LANGS.includes(lang) ? lang : "de";
  document.documentElement.lang = current;
  return current;
}

export function lang() {
  return current;
}

/** The label of `key` in the current language; unknown keys come back as they are. */
export function t(key) {
  const table = LABELS[current];
  return key in table ? table[key] : key;
}

/** A label for a result field or building property such as `heavyrain_max_depth_max`. */
export function fieldLabel(name) {
  if (name in LABELS[current]) return t(name);
  const stripped = name.replace(/_(max|min)$/, "");
  if (stripped in LABELS[current]) return t(stripped);
  return name.replace(/_/g, " ");
}

export function applyLabels(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}

/** Numbers in the current language's notation (decimal comma in German). */
export function formatNumber(value, digits = 2) {
  if (value === undefined || value === null || Number.isNaN(value)) return "–";
  return new Intl.NumberFormat(current === "de" ? "de-DE" : "en-GB", {
    minimumFractionDigits: 0, maximumFractionDigits: digits,
  }).format(value);
}

/** A value with its units made readable: seconds as minutes, m s-1 as m/s. */
export function formatValue(value, units) {
  if (value === undefined || value === null || (typeof value === "number" && !Number.isFinite(value))) return "–";
  if (typeof value === "boolean") return t(value ? "yes" : "no");
  if (typeof value !== "number") return String(value);
  const u = (units || "").trim();
  if (u === "s") return `${formatNumber(value / 60, 1)} min`;
  if (u === "m") return `${formatNumber(value, 2)} m`;
  if (u === "mm") return `${formatNumber(value, 1)} mm`;
  if (u === "m²" || u === "m2") return `${formatNumber(value, 0)} m²`;
  if (u === "%") return `${formatNumber(value, 0)} %`;
  if (u === "m s-1") return `${formatNumber(value, 2)} m/s`;
  if (u === "m2 s-1") return `${formatNumber(value, 2)} m²/s`;
  if (u === "degC" || u === "°C" || u === "celsius") return `${formatNumber(value, 1)} °C`;
  if (u === "K") return `${formatNumber(value, 1)} K`;
  if (u === "degree") return `${formatNumber(value, 0)}°`;
  return u ? `${formatNumber(value, 2)} ${u}` : formatNumber(value, 2);
}

/** "nach 6:40 min" for a snapshot time in seconds. */
export function formatTime(seconds) {
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  const rest = String(s % 60).padStart(2, "0");
  return `${t("after")} ${m}:${rest} min`;
}
