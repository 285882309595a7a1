//! permessage-deflate's decompressor on arbitrary payloads: never panics,
//! never restores more than the message limit nor allocates past it (a
//! compression bomb fails with 1009 as soon as it passes the limit), every
//! failure carries close code 1007 or 1009; and what the compressor makes
//! of the same bytes restores them exactly, message after message.
#![no_main]

use boardcast::extension::deflate::{Deflater, Inflater, RSV1};
use boardcast::extension::negotiate::negotiate;
use boardcast::extension::{Encoder, Extension};
use boardcast::{CloseCode, Config, ContextTakeover, ProtocolError};
use libfuzzer_sys::fuzz_target;

#[path = "alloc.rs"]
mod alloc;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

const MAX_MESSAGE: usize = 3000;

/// What zlib-rs allocates for a decompressor at most: its state and a
/// 32 KiB window (the output buffer is the other allocation bounded).
const INFLATE_STATE: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    // The first byte picks the agreement: the window (9..=15, or a client
    // that asked for 8) and whether the client keeps its context.
    let bits = 8 + (n & 0x7);
    let takeover = if n & 0x8 == 0 { ContextTakeover::Client } else { ContextTakeover::Off };
    let offer = format!("permessage-deflate; client_max_window_bits={bits}; server_max_window_bits={bits}");
    let config = Config::default().deflate(true).deflate_window_bits(15).deflate_threshold(0);
    let params = negotiate([offer.as_str()], &config, takeover).expect("a valid offer");

    // The payloads: the rest split at every 0xff byte.
    let payloads: Vec<&[u8]> = rest.split(|&b| b == 0xff).collect();

    let mut inflater = Inflater::new(&params);
    for payload in &payloads {
        let payload = payload.to_vec();
        alloc::reset();
        match inflater.decode(RSV1, payload, MAX_MESSAGE) {
            Ok(message) => assert!(message.len() <= MAX_MESSAGE),
            Err(e) => {
                assert!(
                    matches!(e, ProtocolError::MessageTooBig | ProtocolError::InvalidCompressedData),
                    "{e:?}"
                );
                let code = e.close_code();
                assert!(code == CloseCode::TOO_BIG || code == CloseCode::INVALID_DATA);
                break;
            }
        }
        assert!(
            alloc::largest() <= (MAX_MESSAGE + 1).max(INFLATE_STATE),
            "allocated {}",
            alloc::largest()
        );
    }

    // Round trip: both ends of the same agreement (the server compresses
    // with its window, the client's decompressor takes a larger one).
    let server_side = Config::default().deflate_threshold(0).deflate_mem_level(1 + n % 9);
    let deflater = Deflater::new(&params, &server_side);
    let mut restorer = Inflater::new(&negotiate(["permessage-deflate"], &config, ContextTakeover::Both).unwrap());
    let mut kept_window = true;
    for payload in payloads.iter().filter(|p| p.len() <= MAX_MESSAGE) {
        match deflater.encode(payload) {
            Some((rsv, wire)) => {
                assert_eq!(rsv, RSV1);
                let restored = restorer.decode(rsv, wire, MAX_MESSAGE).expect("our own output decodes");
                assert_eq!(&restored[..], *payload);
            }
            // Sent as it is: only without the server's context.
            None => kept_window = false,
        }
    }
    assert!(kept_window || params.server_no_context_takeover);
});
