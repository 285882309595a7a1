//! Limits and options, each with a default sized for a small board.

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
    /// If set, upgrade requests are accepted only from these origins
    /// (compared without regard to ASCII case); others get 403. Requests
    /// with no `Origin` header do not come from a browser and pass: the
    /// check protects against other sites' pages, not against programs,
    /// which can send any origin. Default: any origin.
    pub allowed_origins: Option<Vec<String>>,
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
            allowed_origins: None,
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

    /// Sets [`allowed_origins`](Config#structfield.allowed_origins).
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }
}
