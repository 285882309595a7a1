/*!
 * boardcast.js: the JavaScript client of boardcast's wire protocol
 * `boardcast.v1` (docs/protocol.md). One file, no dependencies, no build.
 *
 *   <script src="/boardcast.js"></script>
 *   const bc = boardcast.connect("/ws", { topics: ["temperature"] });
 *   bc.on("temperature", (data, meta) => show(JSON.parse(data), meta.seq));
 *   bc.on("status", (s) => badge(s.state));
 *
 * It runs in browsers, and in Node >= 20 given a WebSocket on globalThis
 * (`node --experimental-websocket`, or `globalThis.WebSocket =
 * require("ws")`); it sets `globalThis.boardcast` and, under CommonJS,
 * `module.exports`. The API reference is docs/boardcast-js.md.
 *
 * Layout: a transport is a small object (`send`, `close`) that reports
 * `message(data)` and `close(info)` through callbacks; the protocol logic
 * (welcome, subscriptions, positions, resume, duplicates, gaps) lives in
 * `Client` and is shared by every transport. Only the WebSocket transport
 * exists today; server-sent events and long polling (issue 14) will be
 * other entries of `transports`.
 */
(function (root) {
  "use strict";

  /** The subprotocol offered in the handshake. */
  const PROTOCOL = "boardcast.v1";

  /** A valid topic name (docs/protocol.md, "Names and numbers"). */
  const TOPIC = /^[A-Za-z0-9._\-:/]{1,64}$/;

  /** Names `on` treats as events rather than topics (see `onTopic`). */
  const EVENTS = ["status", "message", "error"];

  /** The longest first line of a binary frame that is worth decoding. */
  const MAX_HEAD = 256;

  const DEFAULTS = {
    topics: [],
    // Reconnect delays: full jitter, `random() * min(cap, base *
    // factor^attempt)` ms; the attempt count starts again from 0 once a
    // connection has stayed open `resetAfter` ms.
    backoff: { base: 500, cap: 15000, factor: 2, resetAfter: 5000 },
    // A connection that brings no welcome (`w`) within this many ms is
    // dropped and tried again.
    openTimeout: 10000,
    // Sends made while not open wait in a queue of at most this many, and
    // go out, in order, right after the next welcome.
    maxQueue: 100,
    transport: "websocket",
    WebSocket: undefined, // a WebSocket class; default globalThis.WebSocket
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

  // ---------------------------------------------------------------------
  // Transports: `factory(url, callbacks, options)` returns `{ name, send,
  // close }` and calls `callbacks.message(data)` for each frame (a string,
  // or an ArrayBuffer), `callbacks.close({ code, reason })` once when the
  // link is lost (never after its own `close`), and `callbacks.error(e)`
  // for an "error" event of the client (`{ type, reason }`).

  function webSocketTransport(url, callbacks, options) {
    const WS = options.WebSocket || root.WebSocket;
    const ws = new WS(url, [PROTOCOL]);
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

  const transports = { websocket: webSocketTransport };

  // ---------------------------------------------------------------------
  // The client: one per `connect`.

  class Client {
    constructor(url, options) {
      const o = Object.assign({}, DEFAULTS, options);
      o.backoff = Object.assign({}, DEFAULTS.backoff, options && options.backoff);
      if (!transports[o.transport]) {
        throw new TypeError("boardcast: no transport " + JSON.stringify(o.transport));
      }
      if (o.transport === "websocket" && typeof (o.WebSocket || root.WebSocket) !== "function") {
        throw new Error(
          "boardcast: no WebSocket here; in Node, run with --experimental-websocket " +
            "(Node 20, 21) or set globalThis.WebSocket = require(\"ws\")"
        );
      }
      this.options = o;
      /** The resolved WebSocket URL. */
      this.url = resolveUrl(url);
      /** Counters, for tests and dashboards (docs/boardcast-js.md). */
      this.stats = { connects: 0, reconnects: 0, messages: 0, gaps: 0, duplicates: 0, dropped: 0 };
      /** The hub's epoch, from the last welcome (null before the first). */
      this.epoch = null;

      this._state = "connecting";
      this._transport = null; // the link in use, or null
      this._welcomed = false; // whether the link in use has sent `w`
      this._attempt = 0; // failed attempts since the last stable connection
      this._openedAt = 0;
      this._timer = null; // the reconnect timer
      this._openTimer = null; // the welcome deadline
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

    /** The transport in use ("websocket"). */
    get transport() {
      return this.options.transport;
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
        Object.assign({ state: this._state, transport: this.transport, epoch: this.epoch }, extra));
    }

    // --- the API ----------------------------------------------------------

    /**
     * Sends `data` to the server's application: a string as a `d` text
     * frame, an ArrayBuffer, typed array, DataView or Blob as a binary
     * frame. While not open, it is queued (at most `maxQueue`). Returns
     * false if the send was dropped (queue full, or closed).
     */
    send(data) {
      let frame;
      if (typeof data === "string") frame = "d\n" + data;
      else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data) ||
               (typeof Blob !== "undefined" && data instanceof Blob)) frame = data;
      else throw new TypeError("boardcast: send a string, an ArrayBuffer, a typed array or a Blob");
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
      const t = this._transport;
      this._transport = null;
      this._queue = [];
      if (t) t.close(1000, "");
      this._status({});
    }

    // --- the connection's life ---------------------------------------------

    _connect() {
      this._timer = null;
      if (this._state === "closed") return;
      if (this.stats.connects === 0 && this._attempt === 0) this._status({ attempt: 0 });
      this._welcomed = false;
      let t = null;
      const callbacks = {
        message: (data) => t === this._transport && this._receive(data),
        close: (info) => t === this._transport && this._lost(info),
        error: (err) => t === this._transport && this._emit(this._events, "error", err),
      };
      try {
        t = transports[this.options.transport](this.url, callbacks, this.options);
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

    /** The link is gone: try again after a backoff delay. */
    _lost(info) {
      clearTimeout(this._openTimer);
      this._transport = null;
      if (this._state === "closed") return;
      const b = this.options.backoff;
      if (this._welcomed && Date.now() - this._openedAt >= b.resetAfter) this._attempt = 0;
      const delay = backoff(this._attempt, b, this.options.random);
      this._attempt++;
      this._state = "connecting";
      this._timer = setTimeout(() => this._connect(), delay);
      this._status({ attempt: this._attempt, retryIn: delay, code: info.code, reason: info.reason });
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
      this._write(p ? "s " + topic + " " + p.epoch + " " + p.seq : "s " + topic);
    }

    // --- frames from the server ------------------------------------------

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
          return this._welcome(f[1]);
        case "m":
          return this._published(f[1], Number(f[2]), body, binary);
        case "d":
          return this._emit(this._events, "message", body, { binary: binary, epoch: this.epoch });
        case "r":
          return this._answered(f[1], f[2] === "1", Number(f[3]));
        case "u":
          this._leaving.delete(f[1]);
          return;
        case "e":
          return this._emit(this._events, "error", { type: "refused", reason: head.slice(2) });
        default:
          return; // `h`, and verbs of later versions
      }
    }

    /** `w <epoch>`: the link is open; subscribe (resuming), then flush. */
    _welcome(epoch) {
      clearTimeout(this._openTimer);
      this._welcomed = true;
      this._openedAt = Date.now();
      this.epoch = epoch;
      this.stats.connects++;
      if (this.stats.connects > 1) this.stats.reconnects++;
      // What the last link left pending is asked again below.
      this._leaving.clear();
      this._gaps.clear();
      this._replayedUpTo.clear();
      this._state = "open";
      for (const topic of this._topics) this._sendSubscribe(topic);
      const queue = this._queue;
      this._queue = [];
      for (const frame of queue) this._write(frame);
      this._status({});
    }

    /** `r <topic> <recovered> <last>`: the answer to a subscribe. */
    _answered(topic, recovered, last) {
      if (!this._topics.has(topic)) return;
      this._replayedUpTo.set(topic, last);
      const p = this._positions.get(topic);
      // Not recovered is a gap only if something was seen before and the
      // topic has gone past it (a fresh subscription has lost nothing).
      if (!recovered && p && !(p.epoch === this.epoch && p.seq >= last)) this._gaps.add(topic);
    }

    /** `m <topic> <seq>`: deliver, unless it is a duplicate. */
    _published(topic, seq, payload, binary) {
      if (!this._topics.has(topic) || this._leaving.has(topic) || !(seq >= 1)) return;
      const epoch = this.epoch;
      const p = this._positions.get(topic);
      const sameEpoch = p !== undefined && p.epoch === epoch;
      if (sameEpoch && seq <= p.seq) {
        this.stats.duplicates++;
        return;
      }
      // A gap: announced by `r … 0`, or a jump in seq (a slow-consumer
      // policy dropped messages).
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
    transports: transports,
  };

  root.boardcast = boardcast;
  if (typeof module === "object" && module && module.exports) module.exports = boardcast;
})(typeof globalThis !== "undefined" ? globalThis : this);
