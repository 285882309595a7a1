//! What a server's opening handshake agrees to, whichever extensions the
//! crate was built with.

use crate::config::{Config, ContextTakeover};
#[cfg(feature = "deflate")]
use crate::extension::{deflate, negotiate};
use crate::extension::{Encoder, Extension};

/// What the opening handshake agreed to: the response header, and the
/// connection's two sides of the extension.
#[derive(Debug)]
pub struct Agreed {
    /// The `Sec-WebSocket-Extensions` value of the `101` response.
    pub response: String,
    /// For the connection's [`Inbound`](crate::protocol::Inbound).
    pub extension: Box<dyn Extension>,
    /// For the connection's [`Outbound`](crate::protocol::Outbound).
    pub encoder: Box<dyn Encoder>,
    /// The LZ77 window the server may compress with, as a power of two:
    /// the largest a published message compressed once for many
    /// subscribers may use for this one.
    pub window_bits: u8,
}

/// The extensions a server agrees to, from the request's
/// `Sec-WebSocket-Extensions` values (in order), `config` and the
/// caller's context takeover policy (`takeover`, which may be stricter
/// than `config`'s); `None` when none is agreed, always so without the
/// `deflate` feature.
pub fn agree<'a>(
    values: impl IntoIterator<Item = &'a str>,
    config: &Config,
    takeover: ContextTakeover,
) -> Option<Agreed> {
    #[cfg(feature = "deflate")]
    {
        let params = negotiate::negotiate(values, config, takeover)?;
        log::debug!("agreed to {params}");
        Some(Agreed {
            response: params.to_string(),
            extension: Box::new(deflate::Inflater::new(&params)),
            encoder: Box::new(deflate::Deflater::new(&params, config)),
            window_bits: params.server_window(),
        })
    }
    #[cfg(not(feature = "deflate"))]
    {
        let _ = (values.into_iter(), config, takeover);
        None
    }
}
