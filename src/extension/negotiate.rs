//! The negotiation of permessage-deflate (RFC 7692 §5, §7.1): which of a
//! client's offers the server accepts, and with which parameters.
//!
//! The server accepts the first `permessage-deflate` offer it can honour
//! and declines the others (§5.1: "the server MUST decline an extension
//! negotiation offer" with an unknown parameter, a parameter with an
//! invalid value, or a parameter given twice). Its response says only what
//! the offer allows it to say (§7.1):
//!
//! | parameter | in the offer | in the response |
//! |---|---|---|
//! | `server_no_context_takeover` | the client asks it | always echoed; added when the server keeps no context |
//! | `client_no_context_takeover` | a hint from the client | echoed; added when the server wants the client to keep none |
//! | `server_max_window_bits=N` | the client's limit on the server's window | the server's window, at most N (MUST, §7.1.2.1) |
//! | `client_max_window_bits[=N]` | the client can take a limit (at most N) | the server's wish, at most N; never when not offered (§7.1.2.2) |
//!
//! ```
//! use boardcast::extension::negotiate::{negotiate, Params};
//! use boardcast::{Config, ContextTakeover};
//!
//! let config = Config::default().deflate(true);
//! let agreed = negotiate(["permessage-deflate; client_max_window_bits"], &config, ContextTakeover::Off);
//! let agreed = agreed.unwrap();
//! assert_eq!(
//!     agreed.to_string(),
//!     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
//!      server_max_window_bits=12; client_max_window_bits=12"
//! );
//! // An offer with a parameter the server does not know is declined.
//! assert_eq!(negotiate(["permessage-deflate; foo"], &config, ContextTakeover::Off), None);
//! ```

use std::fmt;

use crate::config::{Config, ContextTakeover};
use crate::extension::header::{self, Offer};

/// The extension's registered name (RFC 7692 §6).
pub const NAME: &str = "permessage-deflate";

/// The parameters the server agreed to: what goes in its response, and
/// what the connection's compressor and decompressor are sized by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// The server compresses each message with an empty window.
    pub server_no_context_takeover: bool,
    /// The client compresses each message with an empty window.
    pub client_no_context_takeover: bool,
    /// The server's window, when the response states it (8 to 15);
    /// otherwise 15.
    pub server_max_window_bits: Option<u8>,
    /// The client's window, when the response limits it (8 to 15);
    /// otherwise 15.
    pub client_max_window_bits: Option<u8>,
}

impl Params {
    /// The window the server compresses with. zlib (and zlib-rs) cannot
    /// make a raw deflate stream with an 8-bit window: when 8 is agreed, 9
    /// is used. That is safe: a compressor never refers further back than
    /// its window less 262 bytes, 250 for a 9-bit window, within the 256
    /// bytes of an 8-bit one.
    pub fn server_window(&self) -> u8 {
        self.server_max_window_bits.unwrap_or(15).clamp(9, 15)
    }

    /// The window the server decompresses with: the client's, but at least
    /// 9 bits, since a client on zlib asked for 8 compresses with 9 (as
    /// above, its back-references still fit 256 bytes; a decompressor's
    /// window holds its output, and 9 bits costs 256 bytes more).
    pub fn client_window(&self) -> u8 {
        self.client_max_window_bits.unwrap_or(15).clamp(9, 15)
    }
}

/// The response's `Sec-WebSocket-Extensions` value.
impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NAME)?;
        if self.server_no_context_takeover {
            f.write_str("; server_no_context_takeover")?;
        }
        if self.client_no_context_takeover {
            f.write_str("; client_no_context_takeover")?;
        }
        if let Some(bits) = self.server_max_window_bits {
            write!(f, "; server_max_window_bits={bits}")?;
        }
        if let Some(bits) = self.client_max_window_bits {
            write!(f, "; client_max_window_bits={bits}")?;
        }
        Ok(())
    }
}

/// The parameters for the first `permessage-deflate` offer in `values`
/// (the request's `Sec-WebSocket-Extensions` values, in order) that the
/// server can honour, with `config`'s window and `takeover` (the caller's
/// policy: a [`Server`](crate::Server) passes at most
/// [`ContextTakeover::Client`]); `None` when none can be, or
/// [`Config::deflate`](Config#structfield.deflate) is off.
///
/// A value that breaks the header's grammar is skipped whole, and the
/// offers of the other values still count.
pub fn negotiate<'a>(
    values: impl IntoIterator<Item = &'a str>,
    config: &Config,
    takeover: ContextTakeover,
) -> Option<Params> {
    if !config.deflate {
        return None;
    }
    values
        .into_iter()
        .filter_map(|value| match header::parse(value) {
            Ok(offers) => Some(offers),
            Err(e) => {
                log::debug!("ignoring extension offers: {e}");
                None
            }
        })
        .flatten()
        .filter(|offer| offer.name.eq_ignore_ascii_case(NAME))
        .find_map(|offer| accept(&offer, config, takeover))
}

/// The response to one offer, or `None` to decline it.
fn accept(offer: &Offer<'_>, config: &Config, takeover: ContextTakeover) -> Option<Params> {
    let ours = config.deflate_window_bits.clamp(9, 15);
    let mut params = Params {
        server_no_context_takeover: takeover != ContextTakeover::Both,
        client_no_context_takeover: takeover == ContextTakeover::Off,
        server_max_window_bits: None,
        client_max_window_bits: None,
    };
    let mut seen = [false; 4];
    let mut server_limit = None;
    let mut client_limit = None;
    for param in &offer.params {
        let value = param.value.as_deref();
        let which = [
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
            "client_max_window_bits",
        ]
        .iter()
        .position(|name| param.name.eq_ignore_ascii_case(name))?;
        // §7: "the server MUST decline an extension negotiation offer for
        // this extension if ... the negotiation offer contains multiple
        // extension parameters with the same name."
        if std::mem::replace(&mut seen[which], true) {
            return None;
        }
        match (which, value) {
            // §7.1.1.1: the client asks the server to keep no context; a
            // server always can, and MUST then say so.
            (0, None) => params.server_no_context_takeover = true,
            // §7.1.1.2: a hint that the client keeps none; echoed, which
            // makes it binding, so no decompressor outlives a message.
            (1, None) => params.client_no_context_takeover = true,
            (2, Some(value)) => server_limit = Some(window_bits(value)?),
            (3, None) => client_limit = Some(15),
            (3, Some(value)) => client_limit = Some(window_bits(value)?),
            _ => return None,
        }
    }
    // §7.1.2.1: with a limit offered, the response MUST carry one no
    // larger; without, it MAY state the server's smaller window.
    params.server_max_window_bits = match server_limit {
        Some(limit) => Some(ours.min(limit)),
        None => (ours < 15).then_some(ours),
    };
    // §7.1.2.2: "If a received extension negotiation offer doesn't have
    // the client_max_window_bits extension parameter, the corresponding
    // extension negotiation response to the offer MUST NOT include" it.
    params.client_max_window_bits = client_limit
        .map(|limit| ours.min(limit))
        .filter(|&bits| bits < 15);
    Some(params)
}

/// A window size parameter's value (§7.1.2): a decimal integer from 8 to
/// 15 without leading zeros.
fn window_bits(value: &str) -> Option<u8> {
    match value.as_bytes() {
        [b @ b'8'..=b'9'] => Some(b - b'0'),
        [b'1', b @ b'0'..=b'5'] => Some(10 + b - b'0'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::default().deflate(true).deflate_window_bits(15)
    }

    fn response(offers: &[&str], config: &Config, takeover: ContextTakeover) -> Option<String> {
        negotiate(offers.iter().copied(), config, takeover).map(|p| p.to_string())
    }

    #[test]
    fn nothing_when_disabled_or_not_offered() {
        let off = Config::default().deflate(false);
        assert_eq!(
            response(&["permessage-deflate"], &off, ContextTakeover::Off),
            None
        );
        assert_eq!(
            response(&["x-webkit-deflate-frame"], &config(), ContextTakeover::Off),
            None
        );
        assert_eq!(response(&[], &config(), ContextTakeover::Off), None);
    }

    #[test]
    fn the_policy_decides_what_a_plain_offer_gets() {
        let config = config();
        let answer = |takeover| response(&["permessage-deflate"], &config, takeover);
        assert_eq!(
            answer(ContextTakeover::Both).as_deref(),
            Some("permessage-deflate")
        );
        assert_eq!(
            answer(ContextTakeover::Client).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
        assert_eq!(
            answer(ContextTakeover::Off).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
    }

    #[test]
    fn what_the_client_asks_is_honoured() {
        let config = config();
        let both = ContextTakeover::Both;
        assert_eq!(
            response(
                &["permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
                &config,
                both
            )
            .as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
        // A limit on the server's window is answered with it (MUST).
        assert_eq!(
            response(
                &["permessage-deflate; server_max_window_bits=10"],
                &config,
                both
            )
            .as_deref(),
            Some("permessage-deflate; server_max_window_bits=10")
        );
        let eight = negotiate(
            ["permessage-deflate; server_max_window_bits=8"],
            &config,
            both,
        )
        .unwrap();
        assert_eq!(
            (eight.server_max_window_bits, eight.server_window()),
            (Some(8), 9)
        );
        // Quoted values count as tokens (§7.1.2.1).
        assert_eq!(
            response(
                &["permessage-deflate; server_max_window_bits=\"9\""],
                &config,
                both
            )
            .as_deref(),
            Some("permessage-deflate; server_max_window_bits=9")
        );
    }

    #[test]
    fn the_servers_window_is_stated_and_the_clients_asked_only_when_allowed() {
        let small = config().deflate_window_bits(10);
        let both = ContextTakeover::Both;
        // Not offered: the server may state its own window, but MUST NOT
        // limit the client's.
        assert_eq!(
            response(&["permessage-deflate"], &small, both).as_deref(),
            Some("permessage-deflate; server_max_window_bits=10")
        );
        assert_eq!(
            response(
                &["permessage-deflate; client_max_window_bits"],
                &small,
                both
            )
            .as_deref(),
            Some("permessage-deflate; server_max_window_bits=10; client_max_window_bits=10")
        );
        // Never more than the client's own limits.
        assert_eq!(
            response(
                &["permessage-deflate; client_max_window_bits=9; server_max_window_bits=12"],
                &small,
                both
            )
            .as_deref(),
            Some("permessage-deflate; server_max_window_bits=10; client_max_window_bits=9")
        );
        let full = config();
        assert_eq!(
            response(&["permessage-deflate; client_max_window_bits"], &full, both).as_deref(),
            Some("permessage-deflate")
        );
        let p = negotiate(["permessage-deflate"], &full, both).unwrap();
        assert_eq!((p.server_window(), p.client_window()), (15, 15));
    }

    #[test]
    fn offers_that_cannot_be_honoured_are_declined() {
        let config = config();
        for offer in [
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"\"",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=0x9",
            "permessage-deflate; client_max_window_bits=\"1 0\"",
        ] {
            assert_eq!(
                response(&[offer], &config, ContextTakeover::Off),
                None,
                "{offer}"
            );
        }
    }

    #[test]
    fn the_first_offer_that_can_be_honoured_wins() {
        let config = config();
        // Autobahn 13.7's offers, after one the server must decline.
        let offers = [
            "permessage-deflate; bar, \
             permessage-deflate; client_no_context_takeover; server_max_window_bits=8, \
             permessage-deflate; client_no_context_takeover",
            "permessage-deflate",
        ];
        assert_eq!(
            response(&offers, &config, ContextTakeover::Both).as_deref(),
            Some("permessage-deflate; client_no_context_takeover; server_max_window_bits=8")
        );
        // A malformed header line is skipped; the next one still counts.
        assert_eq!(
            response(
                &["permessage-deflate; =", "permessage-deflate"],
                &config,
                ContextTakeover::Both
            )
            .as_deref(),
            Some("permessage-deflate")
        );
    }
}
