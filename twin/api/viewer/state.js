// The view as a URL hash, so a link can be shared:
//   #run=<id>|scene=<id>&layer=<layer id>&water=1&t=<snapshot>&cmp=<run id>&split=0.5
//    &off=buildings,terrain&sensors=0&globe=1&color=<property>&cam=lon,lat,height,heading,pitch,roll&lang=de
// Angles in degrees, height in metres (ellipsoidal). Unknown keys are ignored.

export function defaultState() {
  return {
    run: "", scene: "", layer: "", water: true, t: -1, cmp: "", split: 0.5,
    off: [], sensors: true, globe: false, color: "", cam: null, lang: "de",
  };
}

export function parseHash(hash) {
  const state = defaultState();
  const params = new URLSearchParams((hash || "").replace(/^#/, ""));
  if (params.has("run")) state.run = params.get("run");
  if (params.has("scene")) state.scene = params.get("scene");
  if (params.has("layer")) state.layer = params.get("layer");
  if (params.has("water")) state.water = params.get("water") !== "0";
  if (params.has("t")) {
    const t = Number.parseInt(params.get("t"), 10);
    state.t = Number.isFinite(t) ? t : -1;
  }
  if (params.has("cmp")) state.cmp = params.get("cmp");
  if (params.has("split")) {
    const s = Number.parseFloat(params.get("split"));
    if (Number.isFinite(s)) state.split = Math.min(0.95, Math.max(0.05, s));
  }
  if (params.has("off")) state.off = params.get("off").split(",").filter(Boolean);
  if (params.has("sensors")) state.sensors = params.get("sensors") !== "0";
  if (params.has("globe")) state.globe = params.get("globe") === "1";
  if (params.has("color")) state.color = params.get("color");
  if (params.has("cam")) {
    const c = params.get("cam").split(",").map(Number);
    if (c.length === 6 && c.every(Number.isFinite)) state.cam = c;
  }
  if (params.has("lang")) state.lang = params.get("lang");
  return state;
}

function round(v, digits) {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function formatHash(state) {
  const p = new URLSearchParams();
  if (state.run) p.set("run", state.run);
  else if (state.scene) p.set("scene", state.scene);
  if (state.layer) p.set("layer", state.layer);
  if (!state.water) p.set("water", "0");
  if (state.t >= 0) p.set("t", String(state.t));
  if (state.cmp) {
    p.set("cmp", state.cmp);
    p.set("split", String(round(state.split, 3)));
  }
  if (state.off.length) p.set("off", state.off.join(","));
  if (!state.sensors) p.set("sensors", "0");
  if (state.globe) p.set("globe", "1");
  if (state.color) p.set("color", state.color);
  if (state.cam) {
    const [lon, lat, h, hd, pt, rl] = state.cam;
    p.set("cam", [round(lon, 7), round(lat, 7), round(h, 1), round(hd, 2), round(pt, 2), round(rl, 2)].join(","));
  }
  if (state.lang && state.lang !== "de") p.set("lang", state.lang);
  // URLSearchParams encodes "/" and ","; keep the hash readable, both are safe in a fragment
  return "#" + p.toString().replace(/%2F/g, "/").replace(/%2C/g, ",");
}
