//! Which paths serve the HTTP transports beside WebSocket
//! (`docs/transports.md`), and how long their sessions wait.

use std::time::Duration;

/// The HTTP transports a [`Server`](super::Server) serves beside WebSocket,
/// and their paths (`None`: not served). `Transports::default()` mounts
/// them all at the paths `boardcast.js` derives from a WebSocket endpoint
/// at `/ws`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transports {
    /// Server-Sent Events, `GET`. Default `/sse`.
    pub sse: Option<String>,
    /// Long polling, `GET`. Default `/poll`.
    pub poll: Option<String>,
    /// Messages from SSE and long-poll pages, `POST`. Default `/send`.
    pub send: Option<String>,
    /// The latest message of each topic, JSON, `GET`. Default `/latest`.
    pub latest: Option<String>,
    /// `boardcast.js`. Default `/boardcast.js`.
    pub script: Option<String>,
    /// How long a long poll is held when there is nothing to answer.
    /// Default 25 s: under the 30 s or more that proxies allow an idle
    /// request.
    pub poll_timeout: Duration,
    /// How long a long-poll session lives without a poll. Default 60 s.
    pub session_timeout: Duration,
}

impl Default for Transports {
    fn default() -> Self {
        Transports {
            sse: Some("/sse".into()),
            poll: Some("/poll".into()),
            send: Some("/send".into()),
            latest: Some("/latest".into()),
            script: Some("/boardcast.js".into()),
            poll_timeout: Duration::from_secs(25),
            session_timeout: Duration::from_secs(60),
        }
    }
}

impl Transports {
    /// None of them: what a `Server` serves until told otherwise.
    pub fn none() -> Self {
        Transports {
            sse: None,
            poll: None,
            send: None,
            latest: None,
            script: None,
            ..Transports::default()
        }
    }

    /// Sets [`poll_timeout`](Self::poll_timeout).
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }

    /// Sets [`session_timeout`](Self::session_timeout).
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// Which endpoint `path` is.
    pub(super) fn route(&self, path: &str) -> Option<Endpoint> {
        let is = |mounted: &Option<String>| mounted.as_deref() == Some(path);
        [
            (is(&self.sse), Endpoint::Sse),
            (is(&self.poll), Endpoint::Poll),
            (is(&self.send), Endpoint::Send),
            (is(&self.latest), Endpoint::Latest),
            (is(&self.script), Endpoint::Script),
        ]
        .into_iter()
        .find_map(|(found, endpoint)| found.then_some(endpoint))
    }
}

/// One of the transports' endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Sse,
    Poll,
    Send,
    Latest,
    Script,
}
