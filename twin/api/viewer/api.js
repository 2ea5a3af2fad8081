// Talking to twin's own HTTP API (same origin only). The API key, when the server needs one, is
// kept for this browser tab (sessionStorage) and sent as X-API-Key.

const KEY_STORE = "twin.apiKey";

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function apiKey() {
  try {
    return sessionStorage.getItem(KEY_STORE) || "";
  } catch {
    return "";
  }
}

export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORE, key);
    else sessionStorage.removeItem(KEY_STORE);
  } catch {
    // storage disabled: the key is used for this request only
  }
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  const key = apiKey();
  if (key) h["X-API-Key"] = key;
  return h;
}

async function errorFrom(response) {
  let body = null;
  let message = `${response.status} ${response.statusText}`;
  try {
    body = await response.json();
    if (body && (body.message || body.detail)) {
      message = typeof body.message === "string" ? body.message : JSON.stringify(body.message || body.detail);
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, body);
}

export async function getJSON(url, { signal } = {}) {
  const response = await fetch(url, { headers: headers(), signal });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

export async function postJSON(url, payload) {
  const response = await fetch(url, {
    method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(payload),
  });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

export async function del(url) {
  const response = await fetch(url, { method: "DELETE", headers: headers() });
  if (!response.ok) throw await errorFrom(response);
  return response.status === 204 ? null : response.json().catch(() => null);
}

/** Lists come bare or wrapped ({items: [...]}, {runs: [...]}, ...): always return the array. */
export function asList(body, ...keys) {
  if (Array.isArray(body)) return body;
  if (body && typeof body === "object") {
    for (const k of [...keys, "items", "data", "results"]) if (Array.isArray(body[k])) return body[k];
  }
  return [];
}

/**
 * Follow a Server-Sent Events stream with fetch (EventSource cannot send the API key header).
 * Calls onEvent({event, data, id}) for each event (data parsed as JSON when it is JSON) and
 * resolves when the server ends the stream or `signal` aborts.
 */
export async function followEvents(url, onEvent, { signal } = {}) {
  const response = await fetch(url, { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!response.ok) throw await errorFrom(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = { event: "message", data: [], id: null };
  const dispatch = () => {
    if (!event.data.length) {
      event = { event: "message", data: [], id: null };
      return;
    }
    const text = event.data.join("\n");
    let data = text;
    try {
      data = JSON.parse(text);
    } catch {
      // plain text event
    }
    onEvent({ event: event.event, data, id: event.id });
    event = { event: "message", data: [], id: null };
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer[nl] === "\r" && buffer[nl + 1] === "\n" ? 2 : 1));
      if (line === "") dispatch();
      else if (line.startsWith(":")) continue;
      else {
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (name === "event") event.event = val;
        else if (name === "data") event.data.push(val);
        else if (name === "id") event.id = val;
      }
    }
  }
  dispatch();
}
