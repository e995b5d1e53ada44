/**
 * push.js: the browser client of push's wire protocol (PROTOCOL.md), a
 * dependency-free ES module; push-server serves it at /client/push.js.
 *
 *   import { subscribe, publish } from "/client/push.js";
 *   const sub = subscribe("https://push.example", "news", {
 *     transports: ["ws", "sse", "stream", "longpoll", "poll"], // the default order
 *     after: savedCursor,      // optional: resume after this id
 *     token: readToken,        // optional: sent as ?token= (a string, or a function giving one)
 *     onevent({ id, event, data }) {},  // data: a string for text, a Uint8Array for binary
 *     onsignal({ signal, cursor, retry_ms }) {},  // "gap" | "lagged" | "closed" | "shutdown"
 *     onstatus({ transport, state }) {}, // "connecting" | "open" | "reconnecting" | "fallback" | "closed"
 *   });
 *   sub.cursor; sub.transport; sub.close();
 *   const id = await publish("https://push.example", "news", "hello", { event: "greeting", token });
 *
 * Every event reaches onevent once, in order, on every transport: each
 * reconnect resumes after sub.cursor, so nothing is lost or repeated while
 * the server retains the events; else a "gap" signal comes first. "sse"
 * reads the stream with fetch, not EventSource (which drops event names it
 * was not told of). Envelopes are decoded to the original bytes.
 *
 * Fallback: a transport that fails to connect, is refused (404, 405, 501),
 * or ends before its first message gives way to the next (onstatus
 * "fallback"); when all have failed the list starts over after a delay. A
 * transport that opened once is kept and reconnected.
 *
 * Ends: "closed" ends the subscription (do not resume a finished
 * incarnation). "lagged" reconnects at once; "shutdown", a 429, a 503 or a
 * dropped connection reconnect after the server's hint (shutdown's retry_ms,
 * Retry-After, SSE retry:), doubling on each failure, else after a jittered,
 * doubling delay (options minDelay, 1000 ms, and maxDelay, 30000 ms). A 400,
 * 401 or 403 ends it with onstatus { state: "closed", error: { status, error, message } }.
 * publish retries a 429 after its Retry-After (option retries, 3), else
 * rejects with a PushError.
 *
 * Options also: from: "earliest", pollInterval (1000 ms between empty
 * polls), longPollTimeout (s), connectTimeout (10000 ms to the first
 * message). Polls give a gap no cursor (null) and cannot see "closed".
 *
 * Every request is a CORS simple request (no preflight from other origins).
 */

const TRANSPORTS = ["ws", "sse", "stream", "longpoll", "poll"];
const ENDS = new Set(["lagged", "closed", "shutdown"]);

/** An error answer from the server: `status`, and its JSON `error` code and `message`. */
export class PushError extends Error {
  constructor(status, body) {
    super(body?.message ?? `push: ${status} with no JSON error body`);
    this.name = "PushError";
    this.status = status;
    this.error = body?.error ?? null;
  }
}

/** Publishes `data` (a string is text; bytes or a Blob, binary); resolves to its id. */
export async function publish(baseUrl, channel, data, { event, token, retries = 3 } = {}) {
  const init = { method: "POST" };
  if (typeof data === "string") {
    init.headers = { "content-type": "text/plain;charset=utf-8" };
    init.body = data;
  } else if (typeof Blob !== "undefined" && data instanceof Blob) {
    // No Content-Type: binary, and no preflight.
    init.body = new Uint8Array(await data.arrayBuffer());
  } else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    init.body = data;
  } else {
    throw new TypeError("push: publish takes a string, a Uint8Array, an ArrayBuffer or a Blob");
  }
  const url = channelUrl(baseUrl, channel);
  if (event !== undefined) url.searchParams.set("event", event);
  if (token) url.searchParams.set("token", token);
  for (let attempt = 0; ; attempt += 1) {
    const response = await fetch(url, init);
    if (response.status === 201) return (await response.json()).id;
    const { refused, retryAfter } = await refusal(response);
    if (response.status !== 429 || attempt >= retries) throw refused;
    await new Promise((resolve) => setTimeout(resolve, retryAfter ?? 1000));
  }
}

/** Subscribes to `channel`; see the top of this file. Returns the subscription. */
export function subscribe(baseUrl, channel, options = {}) {
  return new Subscription(baseUrl, channel, options);
}

class Subscription {
  #base; #channel; #options; #list; #index = 0; #established = false;
  #attempt = 0; #hint = null; #connection = null; #timer = null; #ended = false;

  constructor(baseUrl, channel, options) {
    this.#base = baseUrl;
    this.#channel = channel;
    this.#options = { minDelay: 1000, maxDelay: 30000, pollInterval: 1000, connectTimeout: 10000, ...options };
    this.#list = [...(options.transports ?? TRANSPORTS)];
    const unknown = this.#list.find((name) => !OPENERS[name]);
    if (unknown !== undefined || this.#list.length === 0) {
      throw new TypeError(`push: unknown transport ${unknown}; use some of ${TRANSPORTS.join(", ")}`);
    }
    /** The last cursor seen. */
    this.cursor = options.after ?? null;
    /** The transport in use or tried. */
    this.transport = this.#list[0];
    // Callbacks start once the caller holds the subscription.
    queueMicrotask(() => this.#ended || this.#connect());
  }

  /** Ends the subscription: no more callbacks, no reconnect. */
  close() {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    this.#connection?.stop();
    this.#status("closed");
  }

  #status(state, more) {
    this.#options.onstatus?.({ transport: this.transport, state, ...more });
  }

  /** Where to (re)start: after the cursor if any. */
  #url(technique, extra = {}) {
    const url = channelUrl(this.#base, this.#channel, technique);
    if (this.cursor !== null) url.searchParams.set("after", this.cursor);
    else if (this.#options.from === "earliest") url.searchParams.set("from", "earliest");
    for (const [key, value] of Object.entries(extra)) url.searchParams.set(key, value);
    const { token } = this.#options;
    if (token) url.searchParams.set("token", typeof token === "function" ? token() : token);
    return url;
  }

  #connect() {
    this.transport = this.#list[this.#index];
    this.#hint = null;
    this.#status("connecting");
    const link = { opened: false, live: true };
    const guarded = (f) => (arg) => { if (link.live && !this.#ended) f(arg); };
    const sink = {
      url: (technique, extra) => this.#url(technique, extra),
      options: this.#options,
      item: guarded((item) => this.#item(link, item)),
      hint: guarded((ms) => { this.#hint = ms; }),
      end: guarded((how) => this.#end(link, how)),
    };
    const timer = setTimeout(sink.end, this.#options.connectTimeout, { failed: "no answer in time" });
    let stop = null;
    this.#connection = link;
    link.stop = () => { link.live = false; clearTimeout(timer); stop?.(); };
    link.opening = () => clearTimeout(timer);
    try {
      stop = OPENERS[this.transport](sink);
    } catch (error) {
      sink.end({ failed: String(error) });
    }
  }

  /** A position, signal or event from the live connection. */
  #item(link, item) {
    if (!link.opened) {
      link.opened = true;
      link.opening();
      this.#established = true;
      this.#attempt = 0;
      this.#status("open");
    }
    if (item.signal === undefined) {
      this.cursor = item.id;
      this.#options.onevent?.(item);
      return;
    }
    if (item.cursor !== null && item.cursor !== undefined) this.cursor = item.cursor;
    if (item.signal === "position") return;
    const { signal, cursor = null, retry_ms } = item;
    this.#options.onsignal?.({ signal, cursor, retry_ms });
    if (retry_ms >= 0) this.#hint = retry_ms;
    if (ENDS.has(signal)) this.#end(link, { signal });
  }

  /** The connection ended: { signal }, { refused, retryAfter }, { failed } or { dropped }. */
  #end(link, how) {
    if (!link.live || this.#ended) return;
    link.stop();
    if (how.signal === "closed") return this.close();
    const status = how.refused?.status;
    if (status === 400 || status === 401 || status === 403) {
      // Retrying would only be refused again.
      this.#ended = true;
      const { error, message } = how.refused;
      this.#status("closed", { error: { status, error, message } });
      return;
    }
    if (how.retryAfter !== undefined) this.#hint = how.retryAfter;
    const unavailable = status === 404 || status === 405 || status === 426 || status === 501;
    // 429 and 503 mean wait, not fall back.
    if (!link.opened && status !== 429 && status !== 503 && (!this.#established || unavailable)) {
      // Never open or not served here: try the next.
      this.#status("fallback", { reason: how.refused?.message ?? how.failed ?? "ended before its first message" });
      this.#established = false;
      this.#index += 1;
      if (this.#index < this.#list.length) return this.#connect();
      this.#index = 0;
    }
    const delay = how.signal === "lagged" ? 0 : this.#delay();
    this.#status("reconnecting", { delay });
    this.#timer = setTimeout(() => this.#connect(), delay);
  }

  /** Never sooner than the server's hint. */
  #delay() {
    const { minDelay, maxDelay } = this.#options;
    const base = Math.min(maxDelay, (this.#hint ?? minDelay) * 2 ** this.#attempt);
    this.#attempt += 1;
    return Math.max(this.#hint ?? 0, Math.round(base / 2 + (Math.random() * base) / 2));
  }
}

function channelUrl(baseUrl, channel, technique) {
  const url = new URL(baseUrl, globalThis.location?.href);
  const path = url.pathname.replace(/\/+$/, "");
  url.pathname = `${path}/channels/${encodeURIComponent(channel)}${technique ? "/" + technique : ""}`;
  url.search = "";
  url.hash = "";
  return url;
}

/** A JSON envelope as onevent gets it; a signal object as it came. */
function decode(value) {
  if (value.signal !== undefined) return value;
  const data = value.encoding === "base64" ? fromBase64(value.data) : value.data;
  return { id: value.id, event: value.event ?? "message", data };
}

function fromBase64(text) {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The server's JSON error and Retry-After (in ms, when readable). */
async function refusal(response) {
  const body = await response.json().catch(() => null);
  const seconds = Number(response.headers.get("retry-after"));
  const retryAfter = response.headers.has("retry-after") && seconds >= 0 ? seconds * 1000 : undefined;
  return { refused: new PushError(response.status, body), retryAfter };
}

/** Reads a streaming response's lines (CR before LF dropped). */
function readLines(sink, technique, online) {
  const abort = new AbortController();
  (async () => {
    const response = await fetch(sink.url(technique), { signal: abort.signal, cache: "no-store" });
    if (!response.ok) return sink.end(await refusal(response));
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return sink.end({ dropped: true });
      buffer += value;
      let start = 0;
      for (let at = buffer.indexOf("\n"); at !== -1; at = buffer.indexOf("\n", start)) {
        const line = buffer.slice(start, buffer[at - 1] === "\r" && at > start ? at - 1 : at);
        start = at + 1;
        online(line);
      }
      buffer = buffer.slice(start);
    }
  })().catch((error) => sink.end({ failed: String(error) }));
  return () => abort.abort();
}

const OPENERS = {
  ws(sink) {
    const url = sink.url("ws");
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url);
    socket.onmessage = (message) => {
      if (typeof message.data === "string") sink.item(decode(JSON.parse(message.data)));
    };
    socket.onclose = () => sink.end({ dropped: true });
    return () => {
      socket.onclose = null;
      socket.close(1000);
    };
  },

  stream(sink) {
    // An empty line is a heartbeat.
    return readLines(sink, "stream", (line) => line && sink.item(decode(JSON.parse(line))));
  },

  sse(sink) {
    let id = null, type = "", data = [];
    return readLines(sink, "sse", (line) => {
      if (line === "") {
        if (data.length > 0) {
          const text = data.join("\n");
          if (type === "push.envelope") sink.item(decode(JSON.parse(text)));
          else if (type.startsWith("push.")) sink.item({ ...JSON.parse(text), signal: type.slice(5) });
          else sink.item({ id, event: type || "message", data: text });
        } else if (id !== null) {
          sink.item({ signal: "position", cursor: id });
        }
        id = null; type = ""; data = [];
        return;
      }
      if (line.startsWith(":")) return;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") data.push(value);
      else if (field === "id") id = value;
      else if (field === "event") type = value;
      else if (field === "retry" && /^\d+$/.test(value)) sink.hint(Number(value));
    });
  },

  longpoll: (sink) => polling(sink, "longpoll"),
  poll: (sink) => polling(sink, "poll"),
};

/** Short and long polling, each request after the last one's cursor. */
function polling(sink, technique) {
  const abort = new AbortController();
  const { pollInterval, longPollTimeout } = sink.options;
  (async () => {
    for (let first = true; ; first = false) {
      const extra = {};
      // The first long poll answers at once: "open" means the position is known.
      if (technique === "longpoll" && first) extra.timeout = "0";
      else if (technique === "longpoll" && longPollTimeout !== undefined) extra.timeout = String(longPollTimeout);
      const response = await fetch(sink.url(technique, extra), { signal: abort.signal, cache: "no-store" });
      if (!response.ok) return sink.end(await refusal(response));
      const answer = await response.json();
      if (answer.gap) sink.item({ signal: "gap", cursor: null });
      for (const envelope of answer.messages) sink.item(decode(envelope));
      if (answer.closed) return sink.item({ signal: "closed", cursor: answer.cursor });
      sink.item({ signal: "position", cursor: answer.cursor });
      if (technique === "poll" && answer.messages.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, pollInterval));
      }
      if (abort.signal.aborted) return;
    }
  })().catch((error) => sink.end({ failed: String(error) }));
  return () => abort.abort();
}
