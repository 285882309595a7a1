/*!
 * boardcast.js: the JavaScript client of boardcast's wire protocol
 * `boardcast.v1` (docs/protocol.md), over WebSocket, Server-Sent Events,
 * long polling or polling (docs/transports.md). One file, no
 * dependencies, no build.
 *
 *   <script src="/boardcast.js"></script>
 *   const bc = boardcast.connect("/ws", { topics: ["temperature"] });
 *   bc.on("temperature", (data, meta) => show(JSON.parse(data), meta.seq));
 *   bc.on("status", (s) => badge(s.state, s.transport));
 *
 * It runs in browsers, and in Node >= 20 (WebSocket with
 * `node --experimental-websocket` before Node 22, or `globalThis.WebSocket
 * = require("ws")`; without one, `transport: "auto"` goes on with SSE over
 * `fetch`); it sets `globalThis.boardcast` and, under CommonJS,
 * `module.exports`. The API reference is docs/boardcast-js.md.
 *
 * Layout: a transport is a small object (`send`, `close`) that reports
 * what the server says through callbacks (`welcome`, `answered`,
 * `published`, `direct`, `unsubscribed`, `refused`, `close`, `error`; the
 * WebSocket transport hands whole frames to `message`, which parses them
 * into the same calls). The protocol logic (welcome, subscriptions,
 * positions, resume, duplicates, gaps, the send queue, reconnects and the
 * fallback between transports) lives in `Client` and is shared by all.
 */
(function (root) {
  "use strict";

  /** The subprotocol offered in the handshake. */
  const PROTOCOL = "boardcast.v1";

  /** A valid topic name (docs/protocol.md, "Names and numbers"). */
  const TOPIC = /^[A-Za-z0-9._\-:/]{1,64}$/;

  /** An epoch: 16 lowercase hex digits. */
  const EPOCH = /^[0-9a-f]{16}$/;

  /** Names `on` treats as events rather than topics (see `onTopic`). */
  const EVENTS = ["status", "message", "error"];

  /** The longest first line of a binary frame that is worth decoding. */
  const MAX_HEAD = 256;

  /** `transport: "auto"` tries these, in order. */
  const AUTO = ["websocket", "sse", "poll"];

  /** Topics and cursor in an SSE or poll URL stop at this many characters;
   * the topics left out are subscribed with `POST /send` after the welcome. */
  const MAX_QUERY = 4000;

  const DEFAULTS = {
    topics: [],
    // Reconnect delays: full jitter, `random() * min(cap, base *
    // factor^attempt)` ms; the attempt count starts again from 0 once a
    // connection has stayed open `resetAfter` ms.
    backoff: { base: 500, cap: 15000, factor: 2, resetAfter: 5000 },
    // A connection that brings no welcome within this many ms is dropped
    // and tried again (with "auto": the next transport is tried).
    openTimeout: 10000,
    // Sends made while not open wait in a queue of at most this many, and
    // go out, in order, right after the next welcome.
    maxQueue: 100,
    // "auto" (WebSocket, then SSE, then long polling), or one of
    // "websocket", "sse", "poll", "latest".
    transport: "auto",
    // With "auto", after falling back: the first reconnect at least this
    // many ms after WebSocket last failed tries WebSocket first again.
    retryWebSocketAfter: 60000,
    // "latest": the interval between two GET /latest, in ms.
    interval: 1000,
    // Seconds of history a subscribe asks for when it has no position to
    // resume from (or one no longer kept): the messages the server kept of
    // the last `past` seconds instead of only the latest (0: the latest).
    // A chart fills with its recent past at once.
    past: 0,
    // Liveness, in ms (null: from the heartbeat interval the server's
    // welcome names, 5 s by default): after `staleAfter` of silence (1.5
    // heartbeats) the status says `stale: true`; after `deadAfter` (4
    // heartbeats) the link is taken for dead (a frozen Wi-Fi, a half-open
    // TCP connection) and the client reconnects and resumes.
    staleAfter: null,
    deadAfter: null,
    // A long poll, a POST /send or a GET /latest with no answer within this
    // many ms is a lost link (it must exceed the server's poll_timeout, 25 s
    // by default).
    requestTimeout: 45000,
    // Per-endpoint URLs ({ sse, poll, send, latest }) instead of the
    // WebSocket URL's siblings.
    endpoints: {},
    WebSocket: undefined, // a WebSocket class; default globalThis.WebSocket
    EventSource: undefined, // an EventSource class, or false for SSE over fetch
    fetch: undefined, // default globalThis.fetch
    random: Math.random, // for the jitter; tests inject their own
  };

  const defer =
    typeof queueMicrotask === "function"
      ? queueMicrotask
      : (f) => Promise.resolve().then(f);

  /**
   * The delay in ms before reconnect attempt `attempt` (0 for the first
   * after a drop): a uniformly random value in [0, min(cap, base *
   * factor^attempt)) ("full jitter").
   */
  function backoff(attempt, options, random) {
    const o = Object.assign({}, DEFAULTS.backoff, options);
    const ceiling = Math.min(o.cap, o.base * Math.pow(o.factor, attempt));
    return Math.floor((random || Math.random)() * ceiling);
  }

  /**
   * The WebSocket URL for `url`: `ws:` and `wss:` as they are, `http:` and
   * `https:` turned into `ws:` and `wss:`, and a path (`/ws`) resolved
   * against `base` (default: the page's `location`).
   */
  function resolveUrl(url, base) {
    if (base === undefined && root.location) base = root.location.href;
    let u;
    try {
      u = base ? new URL(String(url), base) : new URL(String(url));
    } catch (e) {
      throw new TypeError(
        "boardcast: " + url + " is not a URL" +
          (base ? "" : " (outside a page, give a full ws://host:port/path)")
      );
    }
    if (u.protocol === "http:") u.protocol = "ws:";
    else if (u.protocol === "https:") u.protocol = "wss:";
    if (u.protocol !== "ws:" && u.protocol !== "wss:") {
      throw new TypeError("boardcast: " + url + " is not a ws, wss, http or https URL");
    }
    u.hash = "";
    return u.href;
  }

  /**
   * The endpoints of every transport from the WebSocket URL `wsUrl`: its
   * last path segment replaced by `sse`, `poll`, `send`, `latest`, with
   * `ws:` as `http:` and `wss:` as `https:` (its query kept), unless
   * `overrides` names one (resolved against the WebSocket URL as http).
   */
  function endpoints(wsUrl, overrides) {
    const http = new URL(wsUrl);
    http.protocol = http.protocol === "wss:" ? "https:" : "http:";
    const out = { websocket: wsUrl };
    for (const name of ["sse", "poll", "send", "latest"]) {
      let u;
      if (overrides && overrides[name]) {
        u = new URL(String(overrides[name]), http.href);
        if (u.protocol === "ws:") u.protocol = "http:";
        else if (u.protocol === "wss:") u.protocol = "https:";
      } else {
        u = new URL(http.href);
        u.pathname = u.pathname.replace(/[^/]*$/, name);
      }
      u.hash = "";
      out[name] = u.href;
    }
    return out;
  }

  /** `url` with `params` appended to its query (values as they are: topics,
   * cursors and session ids need no escaping); undefined values left out. */
  function withQuery(url, params) {
    let q = "";
    for (const k of Object.keys(params)) {
      if (params[k] !== undefined && params[k] !== null) q += (q ? "&" : "") + k + "=" + params[k];
    }
    if (!q) return url;
    return url + (url.indexOf("?") < 0 ? "?" : "&") + q;
  }

  /** A cursor (docs/transports.md): `epoch`, then `~topic~seq` for each
   * `[topic, seq]` of `positions`. */
  function cursor(epoch, positions) {
    let s = epoch;
    for (const [topic, seq] of positions || []) s += "~" + topic + "~" + seq;
    return s;
  }

  /** `{ epoch, positions: [[topic, seq], …] }` from a cursor, or null if it
   * is not one. */
  function parseCursor(text) {
    const f = String(text).split("~");
    if (!EPOCH.test(f[0]) || f.length % 2 !== 1) return null;
    const positions = [];
    for (let i = 1; i < f.length; i += 2) {
      if (!TOPIC.test(f[i]) || !/^[0-9]{1,16}$/.test(f[i + 1])) return null;
      positions.push([f[i], Number(f[i + 1])]);
    }
    return { epoch: f[0], positions: positions };
  }

  function checkTopic(topic) {
    if (typeof topic !== "string" || !TOPIC.test(topic)) {
      throw new TypeError(
        "boardcast: " + JSON.stringify(topic) +
          " is not a topic (1 to 64 of A-Z a-z 0-9 . _ - : /)"
      );
    }
  }

  /** A copy of binary data, so that a queued send keeps what was sent. */
  function copyBinary(data) {
    if (data instanceof ArrayBuffer) return data.slice(0);
    if (ArrayBuffer.isView(data)) {
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    }
    return data; // a Blob is immutable
  }

  /** The bytes of standard base64 (RFC 4648 §4), as an ArrayBuffer. */
  function fromBase64(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  /** The text of base64 of UTF-8. */
  function fromBase64Text(text) {
    return new TextDecoder().decode(fromBase64(text));
  }

  /**
   * A parser of `text/event-stream` (the WHATWG HTML standard, "Parsing an
   * event stream"): `feed(text)` with the decoded text as it comes, in
   * chunks cut anywhere; `onEvent(type, data, lastEventId)` for each event
   * dispatched, `onRetry(ms)` for a `retry` field, `onComment(text)` for a
   * comment line. Lines end with CRLF, LF or CR; `data` lines are joined
   * with `\n`; an event with no `data` is not dispatched; an unfinished
   * event at the end of the stream is never dispatched (no `end` needed).
   */
  function eventStream(onEvent, onRetry, onComment) {
    let buf = "";
    let data = null; // null: no data field yet
    let type = "";
    let lastId = "";
    const line = (l) => {
      if (l === "") {
        if (data !== null) onEvent(type || "message", data, lastId);
        data = null;
        type = "";
        return;
      }
      const colon = l.indexOf(":");
      if (colon === 0) {
        if (onComment) onComment(l.slice(1));
        return;
      }
      const field = colon < 0 ? l : l.slice(0, colon);
      let value = colon < 0 ? "" : l.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "data") data = data === null ? value : data + "\n" + value;
      else if (field === "event") type = value;
      else if (field === "id") {
        if (value.indexOf("\0") < 0) lastId = value;
      } else if (field === "retry") {
        if (/^[0-9]+$/.test(value) && onRetry) onRetry(Number(value));
      }
      // Other fields are ignored.
    };
    return function feed(text) {
      buf += text;
      let from = 0;
      for (;;) {
        let i = from;
        while (i < buf.length && buf[i] !== "\n" && buf[i] !== "\r") i++;
        if (i >= buf.length) break;
        // A CR at the end of what came so far may be the first half of a
        // CRLF: wait for the next chunk.
        if (buf[i] === "\r" && i + 1 >= buf.length) break;
        line(buf.slice(from, i));
        from = i + (buf[i] === "\r" && buf[i + 1] === "\n" ? 2 : 1);
      }
      buf = buf.slice(from);
    };
  }

  // ---------------------------------------------------------------------
  // Transports: `factory(endpoints, callbacks, options, start)` returns
  // `{ name, send, close, subscribed }`. `start` is `{ topics, cursor }`:
  // the topics a transport may subscribe at connect (in its URL) and the
  // cursor of their positions (null with none); `subscribed` is the set of
  // those it did (the client subscribes the others after the welcome).
  // `send(frame)` takes a boardcast.v1 client frame (`s …`, `x …`,
  // `d\n…`, or binary). It reports through `callbacks`:
  //   message(frame)                  a whole boardcast.v1 server frame, or
  //   welcome(epoch, heartbeat)       the link is open; heartbeat: the
  //                                   server's interval in ms, or null
  //   heartbeat()                     a sign of life, nothing else
  //   answered(topic, recovered, last)
  //   published(topic, seq, payload, binary[, epoch])
  //   direct(payload, binary)         a message to this client alone
  //   unsubscribed(topic)
  //   refused(reason)
  //   close({ code, reason })         once, when the link is lost (never
  //                                   after its own `close`)
  //   error(e)                        an "error" event of the client
  //   topics()                        the topics the client wants now
  // A transport never calls back before its factory has returned.

  function webSocketTransport(ep, callbacks, options) {
    const WS = options.WebSocket || root.WebSocket;
    const ws = new WS(ep.websocket, [PROTOCOL]);
    ws.binaryType = "arraybuffer";
    let done = false;
    const lost = (info) => {
      if (done) return;
      done = true;
      callbacks.close(info);
    };
    ws.onopen = () => {
      // A server that does not speak boardcast.v1 accepts the connection
      // without choosing it: its frames would make no sense here.
      if (ws.protocol !== PROTOCOL) {
        callbacks.error({ type: "protocol", reason: "the server did not choose " + PROTOCOL });
        ws.close();
        lost({ code: 1002, reason: "no " + PROTOCOL });
      }
    };
    ws.onmessage = (event) => {
      if (!done) callbacks.message(event.data);
    };
    // The first of `error` and `close` is the loss. A close event should
    // follow an error, but Node 20's WebSocket (undici, see
    // nodejs/undici#3546) fires none after a refused handshake, and some
    // runtimes fire a close with no error.
    ws.onerror = () => {
      lost({ code: 1006, reason: "connection failed" });
      try {
        ws.close();
      } catch (e) {
        // already closing
      }
    };
    ws.onclose = (event) => lost({ code: event.code, reason: event.reason });
    return {
      name: "websocket",
      send: (frame) => ws.send(frame),
      close: (code, reason) => {
        done = true;
        try {
          ws.close(code, reason);
        } catch (e) {
          // already closing
        }
      },
    };
  }

  /**
   * What the HTTP transports share: their requests (aborted on close, with
   * a deadline), the loss (once), and `POST /send` of the session, one at a
   * time so the server gets frames in the order sent.
   */
  function httpLink(ep, callbacks, options) {
    const fetchFn = options.fetch || root.fetch;
    const controllers = new Set();
    const timers = new Set();
    const closers = [];
    let chain = Promise.resolve();
    const link = { session: null, done: false };

    const stop = () => {
      link.done = true;
      for (const c of controllers) c.abort();
      controllers.clear();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const f of closers) f();
    };
    link.onClose = (f) => closers.push(f);
    link.lost = (info) => {
      if (link.done) return;
      stop();
      callbacks.close(info);
    };
    link.close = stop;
    /** A timer cleared on close. */
    link.later = (f, ms) => {
      const t = setTimeout(() => {
        timers.delete(t);
        f();
      }, ms);
      timers.add(t);
      return t;
    };
    link.cancel = (t) => {
      clearTimeout(t);
      timers.delete(t);
    };
    /**
     * `fetch(url, init)`, then `read(response)`; aborted on close, and
     * after `ms` unless `ms` is 0. Resolves with what `read` returns.
     */
    link.request = (url, init, ms, read) => {
      const c = new AbortController();
      controllers.add(c);
      const t = ms ? link.later(() => c.abort(), ms) : null;
      const end = () => {
        controllers.delete(c);
        if (t) link.cancel(t);
      };
      return fetchFn(url, Object.assign({ signal: c.signal, cache: "no-store" }, init))
        .then(read)
        .then(
          (v) => {
            end();
            return v;
          },
          (e) => {
            end();
            throw e;
          }
        );
    };
    /** The failure of a request, as the loss of the link. */
    link.failed = (what) => (e) =>
      link.lost({ code: 1006, reason: what + " failed: " + String((e && e.message) || e) });

    const post = (body, tries) => {
      if (link.done) return undefined;
      const type = typeof body === "string" ? "text/plain" : "application/octet-stream";
      const url = withQuery(ep.send, { session: link.session });
      return link
        .request(url, { method: "POST", headers: { "Content-Type": type }, body: body },
          options.requestTimeout, (res) => res.text().then((text) => ({ status: res.status, text: text })))
        .then((res) => {
          if (link.done || (res.status >= 200 && res.status < 300)) return undefined;
          // The session's inbox is full: its handler is slow. Retry.
          if (res.status === 429 && tries < 8) {
            return new Promise((resolve) => link.later(resolve, 50 * Math.pow(2, tries)))
              .then(() => post(body, tries + 1));
          }
          // The session is gone (expired, or the server restarted).
          if (res.status === 404) return link.lost({ code: 404, reason: "POST /send: no such session" });
          callbacks.error({ type: "send", reason: "POST /send answered " + res.status + ": " + res.text.slice(0, 200) });
          return undefined;
        }, link.failed("POST /send"));
    };
    /** Sends a client frame with `POST /send?session=ID`, after the ones
     * before it. */
    link.send = (frame) => {
      if (link.done) throw new Error("boardcast: the link is closed");
      const body = typeof frame === "string" ? frame : copyBinary(frame);
      chain = chain.then(() => post(body, 0)).catch(link.failed("POST /send"));
    };
    return link;
  }

  /** Decodes the reply of a bad HTTP answer, for the status event. */
  function httpError(what, res) {
    if (res.body && res.body.cancel) res.body.cancel().catch(() => {});
    return { code: res.status, reason: what + " answered " + res.status };
  }

  /** The event names of docs/transports.md, "GET /sse". */
  const SSE_EVENTS = ["welcome", "subscribed", "message", "binary", "text64", "unsubscribed",
    "direct", "direct64", "direct-binary", "refused", "h"];

  /** An SSE event, as the client's calls. */
  function sseEvent(link, callbacks, type, data, id) {
    switch (type) {
      case "welcome": {
        const w = JSON.parse(data);
        if (typeof w.session !== "string" || !EPOCH.test(w.epoch)) throw new Error("a bad welcome");
        link.session = w.session;
        return callbacks.welcome(w.epoch, w.heartbeat > 0 ? w.heartbeat : null);
      }
      case "subscribed": {
        const r = JSON.parse(data);
        return callbacks.answered(r.topic, r.recovered === true, Number(r.last));
      }
      case "message":
      case "binary":
      case "text64": {
        const c = parseCursor(id);
        if (!c || c.positions.length !== 1) throw new Error("a message whose id is not a position: " + id);
        const payload = type === "message" ? data : type === "binary" ? fromBase64(data) : fromBase64Text(data);
        return callbacks.published(c.positions[0][0], c.positions[0][1], payload, type === "binary", c.epoch);
      }
      case "unsubscribed":
        return callbacks.unsubscribed(data);
      case "direct":
        return callbacks.direct(data, false);
      case "direct64":
        return callbacks.direct(fromBase64Text(data), false);
      case "direct-binary":
        return callbacks.direct(fromBase64(data), true);
      case "refused":
        return callbacks.refused(data);
      case "h":
        return callbacks.heartbeat();
      default:
        return undefined; // events of later versions
    }
  }

  /**
   * Server-Sent Events: `GET /sse?topics=…&lastEventID=<cursor>` for what
   * comes, `POST /send` for what goes. With an EventSource (browsers), or
   * else over `fetch` with the stream parsed here (Node). On any error the
   * stream is closed and the client reconnects itself, with a cursor of
   * every topic: EventSource's own reconnect would resume one topic only.
   */
  function sseTransport(ep, callbacks, options, start) {
    const link = httpLink(ep, callbacks, options);
    const url = withQuery(ep.sse, {
      topics: start.topics.length ? start.topics.join(",") : undefined,
      lastEventID: start.cursor || undefined,
      past: start.topics.length && options.past > 0 ? Math.floor(options.past) : undefined,
    });
    const onEvent = (type, data, id) => {
      if (link.done) return;
      try {
        sseEvent(link, callbacks, type, data, id);
      } catch (e) {
        callbacks.error({ type: "protocol", reason: "SSE " + type + ": " + e.message });
        link.lost({ code: 1002, reason: "a bad SSE event" });
      }
    };
    const ES = options.EventSource === false ? null : options.EventSource || root.EventSource;
    if (ES) {
      const es = new ES(url);
      for (const type of SSE_EVENTS) {
        es.addEventListener(type, (e) => onEvent(type, e.data, e.lastEventId));
      }
      es.onerror = () => {
        es.close();
        link.lost({ code: 1006, reason: "the event stream failed" });
      };
      link.onClose(() => es.close());
    } else {
      const parse = eventStream(onEvent);
      link
        .request(url, { headers: { Accept: "text/event-stream" } }, 0, async (res) => {
          if (!res.ok) return link.lost(httpError("GET /sse", res));
          const type = (res.headers.get("content-type") || "").toLowerCase();
          if (type.indexOf("text/event-stream") !== 0) {
            return link.lost(httpError("GET /sse (" + (type || "no type") + ")", res));
          }
          const reader = res.body.getReader();
          const decoder = new TextDecoder();
          for (;;) {
            const chunk = await reader.read();
            if (link.done) return undefined;
            if (chunk.done) return link.lost({ code: 1006, reason: "the event stream ended" });
            parse(decoder.decode(chunk.value, { stream: true }));
          }
        })
        .catch(link.failed("GET /sse"));
    }
    return { name: "sse", subscribed: new Set(start.topics), send: link.send, close: link.close };
  }

  /** A long-poll event, as the client's calls. */
  function pollEvent(callbacks, ev) {
    switch (ev.type) {
      case "r":
        return callbacks.answered(ev.topic, ev.recovered === true, Number(ev.last));
      case "m":
        return callbacks.published(ev.topic, Number(ev.seq), ev.binary ? fromBase64(ev.data) : ev.data, ev.binary === true);
      case "d":
        return callbacks.direct(ev.binary ? fromBase64(ev.data) : ev.data, ev.binary === true);
      case "u":
        return callbacks.unsubscribed(ev.topic);
      case "e":
        return callbacks.refused(ev.reason);
      default:
        return undefined; // `w` (the answer's own fields are the welcome), later verbs
    }
  }

  /**
   * Long polling: the first `GET /poll?topics=…&after=<cursor>` opens a
   * session (its answer is the welcome); then `GET
   * /poll?session=ID&after=<the last answer's cursor>`, one after another.
   * Later subscribes, unsubscribes and sends go with `POST /send`. A `404`
   * (the session is gone) is a lost link: the client reconnects with its
   * own cursor and gets a new session, resumed.
   */
  function pollTransport(ep, callbacks, options, start) {
    const link = httpLink(ep, callbacks, options);
    let url = withQuery(ep.poll, {
      topics: start.topics.length ? start.topics.join(",") : undefined,
      after: start.cursor || undefined,
      past: start.topics.length && options.past > 0 ? Math.floor(options.past) : undefined,
    });
    let retried = false;
    const loop = async () => {
      while (!link.done) {
        let answer;
        try {
          answer = await link.request(url, { headers: { Accept: "application/json" } },
            options.requestTimeout, (res) => {
              if (!res.ok) return link.lost(httpError("GET /poll", res));
              return res.text().then((text) => {
                try {
                  return JSON.parse(text);
                } catch (e) {
                  // A proxy's page where JSON was expected.
                  return link.lost({ code: res.status, reason: "GET /poll answered something else than JSON" });
                }
              });
            });
        } catch (e) {
          // A poll of a session that failed on the way (not our own
          // deadline): once, the same poll again, whose answer the server
          // sends again if it was lost; the session and what it queued for
          // this client are kept.
          if (link.done || !link.session || retried || (e && e.name === "AbortError")) throw e;
          retried = true;
          continue;
        }
        retried = false;
        if (link.done) return;
        if (!link.session) {
          if (!answer || typeof answer.session !== "string" || !EPOCH.test(answer.epoch)) {
            callbacks.error({ type: "protocol", reason: "GET /poll: an answer with no session or epoch" });
            return link.lost({ code: 1002, reason: "a bad poll answer" });
          }
          link.session = answer.session;
          callbacks.welcome(answer.epoch, answer.heartbeat > 0 ? answer.heartbeat : null);
        }
        // An answer, empty or not, is a sign of life: a held poll is
        // answered at least every heartbeat.
        callbacks.heartbeat();
        for (const ev of answer.events || []) {
          if (link.done) return;
          pollEvent(callbacks, ev);
        }
        url = withQuery(ep.poll, { session: link.session, after: answer.cursor });
      }
    };
    // Not before the factory returns: the client must know its transport.
    defer(() => loop().catch(link.failed("GET /poll")));
    // Closed by the client (close(), a dead link): the server would keep
    // the session, and its handler, until session_timeout; end it now.
    const close = () => {
      const session = link.done ? null : link.session;
      link.close();
      if (!session) return;
      const fetchFn = options.fetch || root.fetch;
      Promise.resolve()
        .then(() => fetchFn(withQuery(ep.send, { session: session }), {
          method: "POST", headers: { "Content-Type": "text/plain" }, body: "c", keepalive: true,
        }))
        .catch(() => {});
    };
    return { name: "poll", subscribed: new Set(start.topics), send: link.send, close: close };
  }

  /**
   * Polling `GET /latest?topics=…` every `options.interval` ms, with
   * `If-None-Match`: only the latest message of each topic, so messages in
   * between are lost to it (flagged `recovered: false`). It only reads.
   */
  function latestTransport(ep, callbacks, options) {
    const link = httpLink(ep, callbacks, options);
    const seen = new Map(); // topic -> "epoch seq" last handed on
    let etag = null;
    let tagged = ""; // the topics `etag` is for
    let welcomed = false;
    let timer = null;
    let busy = false;
    let soon = false;
    const tick = () => {
      timer = null;
      busy = true;
      soon = false;
      const topics = callbacks.topics();
      const key = topics.join(",");
      if (key !== tagged) {
        etag = null;
        tagged = key;
      }
      const headers = { Accept: "application/json" };
      if (etag) headers["If-None-Match"] = etag;
      const got = topics.length
        ? link.request(withQuery(ep.latest, { topics: key }), { headers: headers }, options.requestTimeout, (res) => {
          if (res.status === 304) return null;
          if (!res.ok) {
            link.lost(httpError("GET /latest", res));
            return null;
          }
          const tag = res.headers.get("etag");
          return res.json().then((answer) => {
            etag = tag;
            return answer;
          });
        })
        : Promise.resolve(null);
      return got.then((answer) => {
        busy = false;
        if (link.done) return;
        const entries = answer && typeof answer === "object" ? answer : {};
        if (!welcomed) {
          welcomed = true;
          const first = topics.map((t) => entries[t]).find((e) => e && EPOCH.test(e.epoch));
          callbacks.welcome(first ? first.epoch : null, options.interval);
        }
        callbacks.heartbeat();
        for (const topic of topics) {
          const e = entries[topic];
          if (link.done) return;
          if (!e || !EPOCH.test(e.epoch) || !(e.seq >= 1)) continue;
          const k = e.epoch + " " + e.seq;
          if (seen.get(topic) === k) continue;
          // The first sight of a topic is its subscription's answer: what
          // it brings is replayed, and a gap if the topic went past the
          // client's position.
          if (!seen.has(topic)) callbacks.answered(topic, false, e.seq);
          seen.set(topic, k);
          callbacks.published(topic, e.seq, e.binary ? fromBase64(e.data) : e.data, e.binary === true, e.epoch);
        }
        if (!link.done) timer = link.later(tick, soon ? 0 : options.interval);
      }).catch(link.failed("GET /latest"));
    };
    defer(tick);
    return {
      name: "latest",
      subscribed: new Set(callbacks.topics()),
      send: (frame) => {
        if (typeof frame !== "string") return;
        const topic = frame.slice(2);
        if (frame[0] === "x") {
          seen.delete(topic);
          defer(() => !link.done && callbacks.unsubscribed(topic));
        } else if (frame[0] === "s") {
          seen.delete(topic.split(" ")[0]);
          // Poll at once for the new topic.
          if (busy) soon = true;
          else if (timer) {
            link.cancel(timer);
            timer = link.later(tick, 0);
          }
        }
      },
      close: link.close,
    };
  }

  const transports = {
    websocket: webSocketTransport,
    sse: sseTransport,
    poll: pollTransport,
    latest: latestTransport,
  };

  /** Whether transport `name` can run here with options `o`. */
  function available(name, o) {
    const hasFetch = typeof (o.fetch || root.fetch) === "function" && typeof AbortController === "function";
    switch (name) {
      case "websocket":
        return typeof (o.WebSocket || root.WebSocket) === "function";
      case "sse":
      case "poll":
      case "latest":
        return hasFetch; // SSE sends with fetch even with an EventSource
      default:
        return typeof transports[name] === "function";
    }
  }

  // ---------------------------------------------------------------------
  // The client: one per `connect`.

  class Client {
    constructor(url, options) {
      const o = Object.assign({}, DEFAULTS, options);
      o.backoff = Object.assign({}, DEFAULTS.backoff, options && options.backoff);
      if (o.transport === "auto") {
        this._order = AUTO.filter((name) => available(name, o));
        if (!this._order.length) {
          throw new Error("boardcast: no WebSocket and no fetch here: nothing to connect with");
        }
      } else if (typeof transports[o.transport] !== "function") {
        throw new TypeError("boardcast: no transport " + JSON.stringify(o.transport));
      } else if (!available(o.transport, o)) {
        throw new Error(o.transport === "websocket"
          ? "boardcast: no WebSocket here; in Node, run with --experimental-websocket " +
            "(Node 20, 21) or set globalThis.WebSocket = require(\"ws\"), or use transport \"auto\""
          : "boardcast: no fetch here, which the " + o.transport + " transport needs");
      } else {
        this._order = [o.transport];
      }
      this.options = o;
      /** The resolved WebSocket URL. */
      this.url = resolveUrl(url);
      /** Each transport's URL. */
      this.endpoints = endpoints(this.url, o.endpoints);
      /** Counters, for tests and dashboards (docs/boardcast-js.md). */
      this.stats = { connects: 0, reconnects: 0, messages: 0, gaps: 0, duplicates: 0, dropped: 0, fallbacks: 0 };
      /** The hub's epoch, from the last welcome (null before the first). */
      this.epoch = null;
      /** The server's heartbeat interval in ms, from the last welcome (null
       * if it sends none). */
      this.heartbeat = null;
      /** When the open link last brought anything (Date.now()), or null. */
      this.lastHeard = null;

      this._state = "connecting";
      this._current = this._order[0]; // the transport in use, or tried next
      this._working = null; // the transport of the last welcome
      this._wsFailedAt = -Infinity; // when WebSocket last failed to open
      this._started = false;
      this._transport = null; // the link in use, or null
      this._welcomed = false; // whether the link in use has welcomed
      this._attempt = 0; // failed attempts since the last stable connection
      this._openedAt = 0;
      this._timer = null; // the reconnect timer
      this._openTimer = null; // the welcome deadline
      this._watchTimer = null; // the liveness check, while open
      this._stale = false;
      this._queue = []; // sends waiting for the next welcome
      this._topics = new Set(); // wanted topics, in subscription order
      this._positions = new Map(); // topic -> { epoch, seq } last delivered
      this._gaps = new Set(); // topics whose next message follows a gap
      this._replayedUpTo = new Map(); // topic -> `last` of its `r`
      this._leaving = new Set(); // topics with an `x` not yet answered `u`
      this._events = new Map(); // "status" | "message" | "error" -> [fn]
      this._handlers = new Map(); // topic | "*" -> [fn]

      for (const topic of o.topics || []) this.subscribe(topic);
      // Connect once the caller has had a chance to add its listeners.
      defer(() => this._connect());
    }

    /** "connecting", "open" or "closed". */
    get state() {
      return this._state;
    }

    /** The transport in use (or being tried): "websocket", "sse", "poll"
     * or "latest". */
    get transport() {
      return this._current;
    }

    /** Whether the open link has been silent longer than `staleAfter`. */
    get stale() {
      return this._stale;
    }

    /** How long the open link has been silent, in ms (null if not open). */
    get silence() {
      return this._state === "open" && this.lastHeard !== null ? Date.now() - this.lastHeard : null;
    }

    /** The subscribed topics. */
    get topics() {
      return Array.from(this._topics);
    }

    /** The last position delivered for `topic`: `{ epoch, seq }`, or undefined. */
    position(topic) {
      const p = this._positions.get(topic);
      return p && { epoch: p.epoch, seq: p.seq };
    }

    /** The cursor of every position of the last welcome's epoch (null
     * before any welcome). */
    cursor() {
      if (!this.epoch) return null;
      return cursor(this.epoch, this._positionsOf(this.topics));
    }

    _positionsOf(topics) {
      const out = [];
      for (const topic of topics) {
        const p = this._positions.get(topic);
        if (p && p.epoch === this.epoch) out.push([topic, p.seq]);
      }
      return out;
    }

    // --- listeners ------------------------------------------------------

    /**
     * `on("status" | "message" | "error", fn)` listens to an event; any
     * other name is a topic (`"*"`: every topic). Returns a function that
     * removes the listener.
     */
    on(name, fn) {
      const map = EVENTS.indexOf(name) >= 0 ? this._events : this._handlers;
      return this._listen(map, name, fn);
    }

    /** Listens to `topic` even if it is named like an event ("status"). */
    onTopic(topic, fn) {
      return this._listen(this._handlers, topic, fn);
    }

    /** Removes a listener added with `on` (or `onTopic`). */
    off(name, fn) {
      for (const map of [this._events, this._handlers]) {
        const list = map.get(name);
        const i = list ? list.indexOf(fn) : -1;
        if (i >= 0) list.splice(i, 1);
      }
    }

    _listen(map, name, fn) {
      if (typeof fn !== "function") throw new TypeError("boardcast: a listener must be a function");
      if (!map.has(name)) map.set(name, []);
      map.get(name).push(fn);
      return () => {
        const list = map.get(name) || [];
        const i = list.indexOf(fn);
        if (i >= 0) list.splice(i, 1);
      };
    }

    _emit(map, name, a, b) {
      const list = map.get(name);
      if (!list) return;
      for (const fn of list.slice()) {
        try {
          fn(a, b);
        } catch (e) {
          // A listener's bug must not break the protocol: report it as an
          // uncaught error, as an EventTarget would.
          setTimeout(() => {
            throw e;
          });
        }
      }
    }

    _status(extra) {
      this._emit(this._events, "status",
        Object.assign({ state: this._state, transport: this._current, epoch: this.epoch, stale: this._stale }, extra));
    }

    // --- the API ----------------------------------------------------------

    /**
     * Sends `data` to the server's application: a string as a `d` text
     * frame, an ArrayBuffer, typed array, DataView or Blob as a binary
     * frame. While not open, it is queued (at most `maxQueue`). Returns
     * false if the send was dropped (queue full, or closed). Throws with
     * the "latest" transport, which only reads.
     */
    send(data) {
      let frame;
      if (typeof data === "string") frame = "d\n" + data;
      else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data) ||
               (typeof Blob !== "undefined" && data instanceof Blob)) frame = data;
      else throw new TypeError("boardcast: send a string, an ArrayBuffer, a typed array or a Blob");
      if (this.options.transport === "latest") {
        throw new Error("boardcast: the latest transport only reads (GET /latest): " +
          "sending needs websocket, sse or poll");
      }
      if (this._state === "closed") return false;
      if (this._state === "open") {
        this._write(frame);
        return true;
      }
      if (this._queue.length >= this.options.maxQueue) {
        this.stats.dropped++;
        this._emit(this._events, "error", { type: "queue-full", reason: "send dropped: not open and " + this._queue.length + " sends queued" });
        return false;
      }
      this._queue.push(typeof frame === "string" ? frame : copyBinary(frame));
      return true;
    }

    /** Subscribes to `topic` (now if open, else at the next welcome). */
    subscribe(topic) {
      checkTopic(topic);
      if (this._topics.has(topic)) return false;
      this._topics.add(topic);
      if (this._state === "open") this._sendSubscribe(topic);
      return true;
    }

    /** Unsubscribes from `topic`, and forgets its position. */
    unsubscribe(topic) {
      if (!this._topics.delete(topic)) return false;
      this._positions.delete(topic);
      this._gaps.delete(topic);
      this._replayedUpTo.delete(topic);
      if (this._state === "open") {
        // Messages of the topic still on their way are dropped until `u`.
        this._leaving.add(topic);
        this._write("x " + topic);
      }
      return true;
    }

    /** Closes the connection for good: no more reconnects, state "closed". */
    close() {
      if (this._state === "closed") return;
      this._state = "closed";
      clearTimeout(this._timer);
      clearTimeout(this._openTimer);
      this._unwatch();
      const t = this._transport;
      this._transport = null;
      this._queue = [];
      if (t) t.close(1000, "");
      this._status({});
    }

    // --- the connection's life ---------------------------------------------

    /** What a transport may subscribe at connect: topics (as many as fit
     * in a URL) and the cursor of their positions. */
    _start() {
      const topics = [];
      let length = 0;
      for (const topic of this._topics) {
        const p = this._positions.get(topic);
        length += topic.length + 1 + (p && p.epoch === this.epoch ? topic.length + 18 : 0);
        if (length > MAX_QUERY) break;
        topics.push(topic);
      }
      const positions = this._positionsOf(topics);
      return { topics: topics, cursor: positions.length ? cursor(this.epoch, positions) : null };
    }

    _connect() {
      this._timer = null;
      if (this._state === "closed") return;
      if (!this._started) {
        this._started = true;
        this._status({ attempt: 0 });
      }
      this._welcomed = false;
      const name = this._current;
      let t = null;
      const live = () => t !== null && t === this._transport;
      // Whatever a live transport reports was heard from the server.
      const heard = () => live() && this._heard();
      const callbacks = {
        message: (data) => heard() && this._receive(data),
        welcome: (epoch, heartbeat) => heard() && this._welcome(epoch, heartbeat),
        heartbeat: heard,
        answered: (topic, recovered, last) => heard() && this._answered(topic, recovered, last),
        published: (topic, seq, payload, binary, epoch) =>
          heard() && this._published(topic, seq, payload, binary, epoch),
        direct: (payload, binary) => heard() && this._direct(payload, binary),
        unsubscribed: (topic) => heard() && this._leaving.delete(topic),
        refused: (reason) => heard() && this._emit(this._events, "error", { type: "refused", reason: String(reason) }),
        close: (info) => live() && this._lost(info),
        error: (err) => live() && this._emit(this._events, "error", err),
        topics: () => this.topics,
      };
      try {
        t = transports[name](this.endpoints, callbacks, this.options, this._start());
      } catch (e) {
        this._emit(this._events, "error", { type: "connect", reason: String(e && e.message || e) });
        this._lost({ code: 1006, reason: String(e && e.message || e) });
        return;
      }
      this._transport = t;
      this._openTimer = setTimeout(() => {
        if (t !== this._transport || this._welcomed) return;
        t.close(1000, "");
        this._lost({ code: 1006, reason: "no welcome within " + this.options.openTimeout + " ms" });
      }, this.options.openTimeout);
    }

    /**
     * The link is gone. With "auto", a transport that could not open hands
     * over to the next one at once; otherwise try again after a backoff
     * delay, with the transport that worked last (or WebSocket again, once
     * `retryWebSocketAfter` has passed since it failed).
     */
    _lost(info) {
      clearTimeout(this._openTimer);
      this._unwatch();
      this._transport = null;
      if (this._state === "closed") return;
      const failed = this._current;
      this._state = "connecting";
      const auto = this.options.transport === "auto";
      if (auto && !this._welcomed) {
        if (failed === "websocket") this._wsFailedAt = Date.now();
        const next = this._order.indexOf(failed) + 1;
        if (next > 0 && next < this._order.length) {
          this._current = this._order[next];
          this.stats.fallbacks++;
          this._timer = setTimeout(() => this._connect(), 0);
          this._status({ attempt: this._attempt, retryIn: 0, code: info.code, reason: info.reason, failed: failed });
          return;
        }
      }
      const b = this.options.backoff;
      if (this._welcomed && Date.now() - this._openedAt >= b.resetAfter) this._attempt = 0;
      const delay = backoff(this._attempt, b, this.options.random);
      this._attempt++;
      if (auto) {
        const first = this._order[0];
        const retryWs = first === "websocket" &&
          Date.now() - this._wsFailedAt >= this.options.retryWebSocketAfter;
        this._current = this._working && !retryWs ? this._working : first;
      }
      this._timer = setTimeout(() => this._connect(), delay);
      this._status({ attempt: this._attempt, retryIn: delay, code: info.code, reason: info.reason, failed: failed });
    }

    _write(frame) {
      try {
        this._transport.send(frame);
      } catch (e) {
        // The link is closing: its close callback follows.
      }
    }

    _sendSubscribe(topic) {
      const p = this._positions.get(topic);
      const past = this.options.past > 0 ? " past=" + Math.floor(this.options.past) : "";
      this._write((p ? "s " + topic + " " + p.epoch + " " + p.seq : "s " + topic) + past);
    }

    // --- liveness ------------------------------------------------------------

    /** Something came from the server: the link is alive. */
    _heard() {
      this.lastHeard = Date.now();
      if (this._stale) {
        this._stale = false;
        if (this._state === "open") this._status({});
      }
      return true;
    }

    /** The liveness thresholds in ms: options, or else from the heartbeat. */
    _limits() {
      const beat = this.heartbeat;
      return {
        stale: this.options.staleAfter || (beat ? 1.5 * beat : null),
        dead: this.options.deadAfter || (beat ? 4 * beat : null),
      };
    }

    /** Checks the open link's silence against the limits, a few times per
     * stale period: says stale, or drops a dead link to reconnect. */
    _watch() {
      this._unwatch();
      const limits = this._limits();
      if (!limits.stale && !limits.dead) return;
      const period = Math.max(100, Math.min(1000, (limits.stale || limits.dead) / 4));
      this._watchTimer = setInterval(() => {
        const silence = this.silence;
        if (silence === null) return;
        if (limits.dead && silence >= limits.dead && this._transport) {
          const t = this._transport;
          this._stale = true;
          t.close(1000, "");
          this._lost({ code: 1006, reason: "nothing heard for " + silence + " ms" });
          return;
        }
        if (limits.stale && silence >= limits.stale && !this._stale) {
          this._stale = true;
          this._status({ silentFor: silence });
        }
      }, period);
    }

    _unwatch() {
      clearInterval(this._watchTimer);
      this._watchTimer = null;
    }

    // --- what the server says ----------------------------------------------

    /** A boardcast.v1 frame (the WebSocket transport). */
    _receive(data) {
      let head;
      let body;
      let binary = false;
      if (typeof data === "string") {
        const nl = data.indexOf("\n");
        head = nl < 0 ? data : data.slice(0, nl);
        body = nl < 0 ? "" : data.slice(nl + 1);
      } else if (data instanceof ArrayBuffer) {
        const bytes = new Uint8Array(data);
        const nl = bytes.indexOf(10);
        if (nl < 0 || nl > MAX_HEAD) return; // no verb line: not ours
        head = String.fromCharCode.apply(null, bytes.subarray(0, nl));
        body = data.slice(nl + 1);
        binary = true;
      } else {
        return; // a Blob: binaryType was not honoured
      }
      const f = head.split(" ");
      switch (f[0]) {
        case "w":
          return this._welcome(f[1], Number(f[2]) > 0 ? Number(f[2]) : null);
        case "m":
          return this._published(f[1], Number(f[2]), body, binary);
        case "d":
          return this._direct(body, binary);
        case "r":
          return this._answered(f[1], f[2] === "1", Number(f[3]));
        case "u":
          this._leaving.delete(f[1]);
          return;
        case "e":
          return this._emit(this._events, "error", { type: "refused", reason: head.slice(2) });
        default:
          return; // `h` (heard already), and verbs of later versions
      }
    }

    /** The welcome: the link is open; subscribe (resuming) what the
     * transport did not at connect, then flush. */
    _welcome(epoch, heartbeat) {
      clearTimeout(this._openTimer);
      this._welcomed = true;
      this._working = this._current;
      this._openedAt = Date.now();
      this.epoch = epoch;
      this.heartbeat = heartbeat || null;
      this._stale = false;
      this.stats.connects++;
      if (this.stats.connects > 1) this.stats.reconnects++;
      // What the last link left pending is asked again below.
      this._leaving.clear();
      this._gaps.clear();
      this._replayedUpTo.clear();
      this._state = "open";
      const subscribed = this._transport.subscribed || new Set();
      for (const topic of this._topics) if (!subscribed.has(topic)) this._sendSubscribe(topic);
      // Subscribed in the URL, unsubscribed since.
      for (const topic of subscribed) {
        if (!this._topics.has(topic)) {
          this._leaving.add(topic);
          this._write("x " + topic);
        }
      }
      const queue = this._queue;
      this._queue = [];
      for (const frame of queue) this._write(frame);
      this._watch();
      this._status({});
    }

    /** The answer to a subscribe (`r`). */
    _answered(topic, recovered, last) {
      if (!this._topics.has(topic)) return;
      this._replayedUpTo.set(topic, last);
      const p = this._positions.get(topic);
      // Not recovered is a gap only if something was seen before and the
      // topic has gone past it (a fresh subscription has lost nothing).
      if (!recovered && p && !(p.epoch === this.epoch && p.seq >= last)) this._gaps.add(topic);
    }

    /** A message for this client alone (`d`). */
    _direct(payload, binary) {
      this._emit(this._events, "message", payload, { binary: binary, epoch: this.epoch });
    }

    /** A published message (`m`): deliver, unless it is a duplicate. */
    _published(topic, seq, payload, binary, epoch) {
      if (!this._topics.has(topic) || this._leaving.has(topic) || !(seq >= 1)) return;
      if (epoch === undefined) epoch = this.epoch;
      else if (epoch !== this.epoch) this.epoch = epoch; // "latest" learns it here
      const p = this._positions.get(topic);
      const sameEpoch = p !== undefined && p.epoch === epoch;
      if (sameEpoch && seq <= p.seq) {
        this.stats.duplicates++;
        return;
      }
      // A gap: announced by `r … 0`, or a jump in seq (a slow-consumer
      // policy dropped messages; with "latest", messages between polls).
      const recovered = !this._gaps.delete(topic) && !(sameEpoch && seq !== p.seq + 1);
      if (!recovered) this.stats.gaps++;
      this._positions.set(topic, { epoch: epoch, seq: seq });
      this.stats.messages++;
      const upTo = this._replayedUpTo.get(topic);
      const meta = {
        topic: topic,
        seq: seq,
        epoch: epoch,
        binary: binary,
        recovered: recovered,
        replayed: upTo !== undefined && seq <= upTo,
      };
      this._emit(this._handlers, topic, payload, meta);
      this._emit(this._handlers, "*", payload, meta);
    }
  }

  const boardcast = {
    /** Connects to `url` (see `resolveUrl`) with `options` (see DEFAULTS). */
    connect: (url, options) => new Client(url, options),
    Client: Client,
    PROTOCOL: PROTOCOL,
    DEFAULTS: DEFAULTS,
    backoff: backoff,
    resolveUrl: resolveUrl,
    endpoints: endpoints,
    cursor: cursor,
    parseCursor: parseCursor,
    eventStream: eventStream,
    transports: transports,
  };

  root.boardcast = boardcast;
  if (typeof module === "object" && module && module.exports) module.exports = boardcast;
})(typeof globalThis !== "undefined" ? globalThis : this);
