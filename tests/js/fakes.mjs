// Scripted fakes of what boardcast.js's transports use: WebSocket, fetch
// (answers chosen by the test, event-stream bodies pushed chunk by chunk)
// and EventSource. Each records what the client did, and the test answers
// in the exact order it chooses; nothing touches the network.

import { bytes, until } from "./harness.mjs";

/** A WebSocket the test drives: `accept`, `recv`, `fail`, `drop`, `take`. */
export class FakeWebSocket {
  static all = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.protocol = "";
    this.binaryType = "blob";
    this.sent = [];
    this.closedWith = null;
    FakeWebSocket.all.push(this);
  }
  send(frame) {
    if (this.closedWith) throw new Error("send on a closed fake");
    this.sent.push(frame);
  }
  close(code, reason) {
    this.closedWith = { code, reason };
  }
  // The test's side:
  accept(protocol = "boardcast.v1") {
    this.protocol = protocol;
    this.onopen({});
  }
  recv(data) {
    this.onmessage({ data });
  }
  /** An error event and no close event, as Node 20's undici does after a
   * refused handshake (and as a browser does for a 403 or a proxy's 200). */
  fail() {
    this.onerror({});
  }
  drop(code = 1006) {
    this.closedWith = { code };
    this.onclose({ code, reason: "", wasClean: false });
  }
  /** The frames sent since the last call, as text (binary as byte arrays). */
  take() {
    const out = this.sent.map((f) => (typeof f === "string" ? f : bytes(f)));
    this.sent = [];
    return out;
  }
}

/**
 * A fetch whose requests wait for the test: `fake.fetch` is given to the
 * client; `fake.next(what, match)` waits for the next unanswered request
 * (matching `match(req)` if given), which the test answers with
 * `req.json(...)`, `req.status(...)`, `req.html()` or `req.stream()`.
 */
export class FakeFetch {
  constructor() {
    this.requests = [];
    this.fetch = (url, init = {}) => this._fetch(url, init);
  }

  _fetch(url, init) {
    return new Promise((resolve, reject) => {
      const headers = {};
      for (const [k, v] of Object.entries(init.headers || {})) headers[k.toLowerCase()] = v;
      const req = {
        url: String(url),
        method: init.method || "GET",
        headers,
        body: init.body,
        answered: false,
        aborted: false,
        stream: null,
      };
      const answer = (response) => {
        if (req.answered) throw new Error("answered twice: " + req.url);
        req.answered = true;
        if (!req.aborted) resolve(response);
      };
      req.json = (value, status = 200, extra = {}) =>
        answer(new Response(JSON.stringify(value), { status, headers: Object.assign({ "content-type": "application/json" }, extra) }));
      req.status = (status, extra = {}, text = null) =>
        answer(new Response(status === 204 || status === 304 ? null : text || "status " + status, { status, headers: extra }));
      /** Fails as fetch does on a network error. */
      req.fail = (error) => {
        if (req.answered) throw new Error("answered twice: " + req.url);
        req.answered = true;
        reject(error);
      };
      req.html = () =>
        answer(new Response("<html>a proxy's page</html>", { status: 200, headers: { "content-type": "text/html" } }));
      /** Answers 200 text/event-stream and returns `{ push(text or bytes), end() }`. */
      req.stream = (type = "text/event-stream") => {
        let ctl;
        const body = new ReadableStream({ start: (c) => (ctl = c) });
        req.stream = { push: (data) => ctl.enqueue(typeof data === "string" ? new TextEncoder().encode(data) : data), end: () => ctl.close(), ctl };
        answer(new Response(body, { status: 200, headers: { "content-type": type } }));
        return req.stream;
      };
      if (init.signal) {
        init.signal.addEventListener("abort", () => {
          req.aborted = true;
          const e = new DOMException("This operation was aborted", "AbortError");
          if (req.stream && req.stream.ctl) {
            try {
              req.stream.ctl.error(e);
            } catch (x) {
              // already closed
            }
          }
          reject(e);
        });
      }
      this.requests.push(req);
    });
  }

  /** The next request not yet answered (or taken), matching `match`. */
  async next(what, match = () => true) {
    const req = await until(what, () => this.requests.find((r) => !r.taken && !r.answered && !r.aborted && match(r)));
    req.taken = true;
    return req;
  }

  /** The text of a request's body (binary as a byte array). */
  static body(req) {
    const b = req.body;
    if (typeof b === "string") return b;
    return bytes(b instanceof ArrayBuffer ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
  }
}

/** An EventSource the test drives: `open`, `event`, `error`. */
export class FakeEventSource {
  static all = [];
  constructor(url) {
    this.url = url;
    this.listeners = new Map();
    this.closed = false;
    this.onerror = null;
    FakeEventSource.all.push(this);
  }
  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(fn);
  }
  close() {
    this.closed = true;
  }
  // The test's side: an event as EventSource dispatches it (a MessageEvent
  // with data and lastEventId).
  event(type, data, lastEventId = "") {
    if (this.closed) return;
    for (const fn of this.listeners.get(type) || []) fn({ type, data, lastEventId });
  }
  error() {
    if (this.onerror) this.onerror({});
  }
}
