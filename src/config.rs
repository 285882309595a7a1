//! Limits and options, each with a default sized for a small board.

use std::time::Duration;

/// Limits and handshake options for connections.
///
/// Every limit bounds what one peer can make the board hold in memory; the
/// defaults keep a misbehaving client well under a megabyte. Build one with
/// chained setters:
///
/// ```
/// let config = boardcast::Config::default()
///     .max_message_size(1 << 20)
///     .protocols(["sensors.v1"])
///     .allowed_origins(["http://board.local:8080"]);
/// assert_eq!(config.max_message_size, 1 << 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The largest message accepted, reassembled from all its fragments.
    /// Default 256 KiB: sensor readings and commands are far smaller, and
    /// the board never holds more than this per client for a message in
    /// progress. A larger one is refused with close code 1009 as soon as its
    /// header announces it, before its payload is read or allocated.
    pub max_message_size: usize,
    /// The largest single frame accepted. Default 256 KiB, as for messages.
    /// A larger one is refused with close code 1009 from its header alone.
    pub max_frame_size: usize,
    /// The largest opening handshake request head, request line and headers
    /// together. Default 8 KiB, as nginx's default header buffers: browsers
    /// send well under 2 KiB unless cookies pile up. Past it the request is
    /// answered with 431.
    pub max_request_size: usize,
    /// The most header fields an opening handshake request may have.
    /// Default 32; browsers send about 15. Past it: 431.
    pub max_headers: usize,
    /// The size of each connection's read buffer. Default 4 KiB: one page,
    /// enough for a burst of small frames in one read.
    pub read_buffer_size: usize,
    /// The subprotocols the server speaks, most preferred first. When the
    /// client offers some, the first of these that it offers is selected
    /// and sent back in `Sec-WebSocket-Protocol`. Default: none.
    pub protocols: Vec<String>,
    /// The browser origins allowed to open a WebSocket besides the
    /// request's own, as a browser sends them (`http://dashboard.example:8080`,
    /// compared without regard to ASCII case); `"*"` allows any origin.
    /// Default: none, same-origin only.
    ///
    /// An upgrade request with an `Origin` header comes from a page in a
    /// browser. Unless that origin is the request's own (its host and port
    /// are the `Host` header's) or listed here, it gets `403 Forbidden`:
    /// otherwise any site a user on the LAN visits could read the board's
    /// stream and send it commands with the user's network position
    /// (cross-site WebSocket hijacking). Requests with no `Origin` header
    /// do not come from a browser and pass: the check protects against
    /// other sites' pages, not against programs, which can send any origin.
    pub allowed_origins: Vec<String>,
    /// The most connections the [`Server`](crate::Server) serves at once,
    /// handshakes included. Past it a new connection gets `503 Service
    /// Unavailable` with `Retry-After` and is closed, and no thread is
    /// spawned for it. Default 256: two threads and about 22 KiB of memory each.
    pub max_connections: usize,
    /// The stack size of each connection thread and writer thread. Default
    /// 64 KiB, ample for boardcast itself; raise it if your handler needs
    /// more. Each thread reserves this much address space plus a guard page,
    /// which matters on 32-bit ARM (3 GiB of address space: 8 MiB default
    /// stacks would cap a server at a few hundred threads); only the pages
    /// touched count toward memory use.
    pub stack_size: usize,
    /// How long a client has to send its whole handshake request, from the
    /// moment it connects. Default 10 s. A client that trickles its request
    /// (slowloris) is dropped when it runs out.
    pub handshake_timeout: Duration,
    /// After this long without receiving anything, the server pings the
    /// client. Default 20 s: often enough to keep NAT and Wi-Fi state
    /// alive, rarely enough to cost nothing. `None` disables keepalive.
    pub ping_interval: Option<Duration>,
    /// How long a pinged client has to send anything back (a pong, or any
    /// other frame) before it is declared gone and closed. Default 10 s:
    /// a half-open connection (the peer vanished without a FIN) ends within
    /// `ping_interval + pong_timeout`.
    pub pong_timeout: Duration,
    /// How often a `boardcast.v1` client hears from the server even when
    /// nothing is published, so that a page can tell a quiet board from a
    /// dead link: an `h` frame over WebSocket, an `h` event over
    /// Server-Sent Events, an empty answer to a held long poll (which is
    /// held at most this long). Default 5 s. The welcome tells the client
    /// the interval. Raw WebSocket clients get no heartbeat frames (they
    /// have pings). `None` turns heartbeats off: SSE streams then get a
    /// comment every `ping_interval`, and polls are held `poll_timeout`.
    pub heartbeat_interval: Option<Duration>,
    /// How long one write may block on a client that does not read. Default
    /// 10 s; past it the client is disconnected.
    pub write_timeout: Duration,
    /// How long to wait for the peer's close frame (or its hang-up) after
    /// ours, before closing the TCP connection anyway. Default 5 s.
    pub close_timeout: Duration,
    /// How long a graceful shutdown waits for clients to finish their
    /// closing handshake before cutting their connections. Default 5 s.
    pub shutdown_timeout: Duration,
    /// The most messages waiting to be written to one client. Default 32:
    /// three seconds of readings at 10 Hz.
    pub queue_messages: usize,
    /// The most bytes waiting to be written to one client. Default 256 KiB.
    /// A published message past it meets the topic's
    /// [`Policy`](crate::hub::Policy) (its frame
    /// is shared between clients, so this bounds the backlog, not a copy per
    /// client); a handler's own send waits for room, up to
    /// `write_timeout`. A single message larger than this waits for an
    /// empty queue.
    pub queue_bytes: usize,
    /// The host names served besides the server's own, for the `Host`
    /// header of every request (pages and upgrades): `"dash.example.com"`
    /// that name alone, `".example.com"` it and every name under it, `"*"`
    /// any host. Names only, without a port; compared without regard to
    /// ASCII case. Default: none.
    ///
    /// The server's own are IP addresses, `localhost` and `*.localhost`,
    /// `*.local` (mDNS), names without a dot, and the machine's hostname.
    /// Any other name gets `421 Misdirected Request`: a page an attacker
    /// serves from a name of theirs, which their DNS then points at the
    /// board (DNS rebinding), would be same-origin with the board and
    /// could read its pages and stream. Add the names a reverse proxy or
    /// the LAN's DNS gives the board (`board.lan`, `board.fritz.box`).
    pub allowed_hosts: Vec<String>,

    /// How long a message may take to arrive, from the first byte of its
    /// first frame to the last byte of its last one (a control frame counts
    /// as a message of its own). Past it the connection is failed with close
    /// code 1008 (policy violation) and [`ProtocolError::MessageTooSlow`].
    /// `None` disables it.
    ///
    /// Default 30 s. Keepalive cannot catch a peer that announces a large
    /// frame and trickles its payload (any byte counts as an answer), so
    /// without this a trickle of one byte every 2 s holds a connection for
    /// the 4.7 days a 200 KiB message takes; with it, the trickle is cut 30 s
    /// after its first byte (well within a minute, whatever its pace: the
    /// deadline is for the whole message, not for each read). Honest peers
    /// are far from it: a message of the full default
    /// [`max_message_size`](Config#structfield.max_message_size), 256 KiB,
    /// needs only 70 kbit/s to arrive in time, and a command from a browser
    /// arrives in one read. Raise it for large messages over slow links,
    /// and for a peer that streams one long fragmented message.
    ///
    /// [`ProtocolError::MessageTooSlow`]: crate::ProtocolError::MessageTooSlow
    pub message_timeout: Option<Duration>,

    /// The most bytes the messages in progress of all a
    /// [`Server`](crate::Server)'s connections may hold together, beyond
    /// the first `read_buffer_size` of each (a connection's own, so small
    /// messages pass even when large ones hold the whole budget): one
    /// budget shared by every client, so the memory held for partial
    /// messages is bounded whatever the number of connections. Default
    /// 16 MiB: 64 messages of the default `max_message_size` at once, about
    /// 6 % of a 256 MB board. A message whose storage would take the total
    /// past it fails its connection with close code 1013 (try again
    /// later). A message's storage grows with the bytes that arrived (at
    /// most twice those plus a read buffer), so a header alone takes a read
    /// buffer, not `max_message_size`.
    pub max_partial_bytes: usize,
    /// The most connections a [`Server`](crate::Server) serves at once from
    /// one address (an IPv6 address's /64, which one host usually has
    /// whole), so one host cannot fill `max_connections`. Default 32. Past
    /// it: `503` with `Retry-After`, no thread, as for `max_connections`.
    /// Loopback peers are exempt unless
    /// [`limit_loopback`](Config#structfield.limit_loopback) is set: a
    /// reverse proxy on the board (nginx) makes every client one loopback
    /// address. A proxy on another host makes every client *its* address:
    /// raise this limit to `max_connections` then, and ration per client at
    /// the proxy.
    pub max_connections_per_ip: usize,
    /// Whether [`max_connections_per_ip`](Config#structfield.max_connections_per_ip)
    /// applies to loopback peers (127.0.0.0/8, `::1`) too. Default false.
    pub limit_loopback: bool,
    /// The kernel send buffer (`SO_SNDBUF`) of each accepted connection,
    /// in bytes as passed to `setsockopt` (Linux doubles it for its
    /// bookkeeping and reports the doubled figure). Default `Some(64 KiB)`:
    /// the kernel then holds at most 128 KiB for a client that never reads,
    /// instead of autotuning up to `net.ipv4.tcp_wmem`'s maximum (4 MiB by
    /// default); a reading client gets its messages as fast on a LAN.
    /// `None` leaves the kernel's autotuning. Set on Linux only; elsewhere
    /// it is ignored.
    pub send_buffer_size: Option<usize>,

    /// Whether to agree to permessage-deflate compression (RFC 7692) when
    /// a client offers it. Default: on when the crate is built with the
    /// `deflate` feature; without it, no offer is ever accepted and the
    /// `deflate_*` settings are ignored.
    ///
    /// What it costs: see [`deflate_takeover`](Config#structfield.deflate_takeover).
    pub deflate: bool,
    /// The LZ77 window, as a power of two from 9 (512 bytes) to 15
    /// (32 KiB), used for what the server compresses and asked of the
    /// client for what it compresses (when its offer lets the server ask:
    /// browsers' does). Default 12 (4 KiB), as Python `websockets`: a
    /// dashboard's readings repeat within far less, and a connection that
    /// keeps the client's context holds this window between messages.
    /// Values outside 9..=15 are taken as the nearest bound.
    pub deflate_window_bits: u8,
    /// zlib's `memLevel`, 1 to 9, for what the server compresses: the size
    /// of the compressor's symbol buffer, `2^(memLevel + 8)` bytes (8 KiB
    /// at the default 5, as Python `websockets`). Higher compresses large
    /// messages a little better and faster, with more memory per
    /// compressor. Values outside 1..=9 are taken as the nearest bound.
    pub deflate_mem_level: u8,
    /// Which side keeps its compression context (the LZ77 window) from
    /// one message to the next. Default [`ContextTakeover::Off`]: each
    /// message is compressed alone, so no connection holds compression
    /// state between messages; a message takes a compressor or
    /// decompressor only while it is processed.
    ///
    /// A [`Server`](crate::Server) never keeps its own context, whatever
    /// this says: a published message is compressed once and the same
    /// frame goes to every subscriber, and a client's frames are made on
    /// several threads. The client's context ([`ContextTakeover::Client`])
    /// costs a decompressor per connection, about 42 KiB (zlib-rs
    /// allocates a 32 KiB window whatever
    /// [`deflate_window_bits`](Config#structfield.deflate_window_bits));
    /// the server's ([`ContextTakeover::Both`], for [`accept`](crate::accept)
    /// only) a compressor per connection, over 130 KiB (zlib-rs's hash
    /// table alone is 128 KiB whatever the `memLevel`).
    pub deflate_takeover: ContextTakeover,
    /// Messages shorter than this many bytes are sent uncompressed: below
    /// it, compression saves a few bytes at the cost of a compressor.
    /// Default 64. A message that compression would not make smaller is
    /// also sent as it is, unless this is 0 (every message compressed) or
    /// the server keeps its context. (A published message is compressed
    /// once for all its clients, whatever their threshold: only when it
    /// shrinks.)
    pub deflate_threshold: usize,
}

/// Which side of a permessage-deflate connection keeps its compression
/// context between messages (RFC 7692 §7.1.1): see
/// [`Config::deflate_takeover`](Config#structfield.deflate_takeover).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContextTakeover {
    /// Neither: the server answers with `server_no_context_takeover` and
    /// `client_no_context_takeover`, and holds no compression state
    /// between messages.
    #[default]
    Off,
    /// The client's only: better compression of what browsers send, for a
    /// decompressor held by each connection.
    Client,
    /// Both sides' (a plain [`accept`](crate::accept)ed connection; a
    /// [`Server`](crate::Server) takes it as `Client`).
    Both,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_size: 256 << 10,
            max_frame_size: 256 << 10,
            max_request_size: 8 << 10,
            max_headers: 32,
            read_buffer_size: 4 << 10,
            protocols: Vec::new(),
            allowed_origins: Vec::new(),
            max_connections: 256,
            stack_size: 64 << 10,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(20)),
            pong_timeout: Duration::from_secs(10),
            heartbeat_interval: Some(Duration::from_secs(5)),
            write_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            queue_messages: 32,
            queue_bytes: 256 << 10,
            allowed_hosts: Vec::new(),
            message_timeout: Some(Duration::from_secs(30)),
            max_partial_bytes: 16 << 20,
            max_connections_per_ip: 32,
            limit_loopback: false,
            send_buffer_size: Some(64 << 10),
            deflate: cfg!(feature = "deflate"),
            deflate_window_bits: 12,
            deflate_mem_level: 5,
            deflate_takeover: ContextTakeover::Off,
            deflate_threshold: 64,
        }
    }
}

impl Config {
    /// Sets [`max_message_size`](Config#structfield.max_message_size).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`max_frame_size`](Config#structfield.max_frame_size).
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`max_request_size`](Config#structfield.max_request_size).
    pub fn max_request_size(mut self, bytes: usize) -> Self {
        self.max_request_size = bytes;
        self
    }

    /// Sets [`max_headers`](Config#structfield.max_headers).
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// Sets [`read_buffer_size`](Config#structfield.read_buffer_size)
    /// (at least 1).
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(1);
        self
    }

    /// Sets [`protocols`](Config#structfield.protocols).
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`allowed_origins`](Config#structfield.allowed_origins): the
    /// origins allowed besides same-origin requests, `["*"]` for any.
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`max_connections`](Config#structfield.max_connections).
    pub fn max_connections(mut self, count: usize) -> Self {
        self.max_connections = count;
        self
    }

    /// Sets [`stack_size`](Config#structfield.stack_size).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Sets [`handshake_timeout`](Config#structfield.handshake_timeout).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`ping_interval`](Config#structfield.ping_interval).
    pub fn ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Sets [`pong_timeout`](Config#structfield.pong_timeout).
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.pong_timeout = timeout;
        self
    }

    /// Sets [`heartbeat_interval`](Config#structfield.heartbeat_interval).
    pub fn heartbeat_interval(mut self, interval: Option<Duration>) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Sets [`write_timeout`](Config#structfield.write_timeout).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Sets [`close_timeout`](Config#structfield.close_timeout).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets [`shutdown_timeout`](Config#structfield.shutdown_timeout).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sets [`queue_messages`](Config#structfield.queue_messages).
    pub fn queue_messages(mut self, count: usize) -> Self {
        self.queue_messages = count;
        self
    }

    /// Sets [`queue_bytes`](Config#structfield.queue_bytes).
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Sets [`allowed_hosts`](Config#structfield.allowed_hosts): the host
    /// names served besides the server's own, `["*"]` for any.
    pub fn allowed_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`message_timeout`](Config#structfield.message_timeout).
    pub fn message_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.message_timeout = timeout;
        self
    }

    /// Sets [`max_partial_bytes`](Config#structfield.max_partial_bytes).
    pub fn max_partial_bytes(mut self, bytes: usize) -> Self {
        self.max_partial_bytes = bytes;
        self
    }

    /// Sets [`max_connections_per_ip`](Config#structfield.max_connections_per_ip).
    pub fn max_connections_per_ip(mut self, count: usize) -> Self {
        self.max_connections_per_ip = count;
        self
    }

    /// Sets [`limit_loopback`](Config#structfield.limit_loopback).
    pub fn limit_loopback(mut self, limit: bool) -> Self {
        self.limit_loopback = limit;
        self
    }

    /// Sets [`send_buffer_size`](Config#structfield.send_buffer_size).
    pub fn send_buffer_size(mut self, bytes: Option<usize>) -> Self {
        self.send_buffer_size = bytes;
        self
    }

    /// Sets [`deflate`](Config#structfield.deflate).
    pub fn deflate(mut self, enabled: bool) -> Self {
        self.deflate = enabled;
        self
    }

    /// Sets [`deflate_window_bits`](Config#structfield.deflate_window_bits)
    /// (taken into 9..=15).
    pub fn deflate_window_bits(mut self, bits: u8) -> Self {
        self.deflate_window_bits = bits.clamp(9, 15);
        self
    }

    /// Sets [`deflate_mem_level`](Config#structfield.deflate_mem_level)
    /// (taken into 1..=9).
    pub fn deflate_mem_level(mut self, level: u8) -> Self {
        self.deflate_mem_level = level.clamp(1, 9);
        self
    }

    /// Sets [`deflate_takeover`](Config#structfield.deflate_takeover).
    pub fn deflate_takeover(mut self, takeover: ContextTakeover) -> Self {
        self.deflate_takeover = takeover;
        self
    }

    /// Sets [`deflate_threshold`](Config#structfield.deflate_threshold).
    pub fn deflate_threshold(mut self, bytes: usize) -> Self {
        self.deflate_threshold = bytes;
        self
    }
}
