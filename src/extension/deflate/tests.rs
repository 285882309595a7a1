use super::*;
use crate::config::ContextTakeover;
use crate::extension::negotiate::negotiate;

const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

/// The parameters agreed for `offer` under `takeover`, window 15.
fn params(offer: &str, takeover: ContextTakeover) -> Params {
    negotiate([offer], &config(), takeover).expect("an acceptable offer")
}

fn config() -> Config {
    Config::default()
        .deflate(true)
        .deflate_window_bits(15)
        .deflate_threshold(0)
}

fn decode(inflater: &mut Inflater, wire: &[u8], max: usize) -> Result<Vec<u8>, ProtocolError> {
    inflater.decode(RSV1, wire.to_vec(), max)
}

/// Text that compresses, as readings do, without being one repeated byte.
fn readings(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0u32;
    while out.len() < n {
        out.extend_from_slice(
            format!("{{\"t\":{},\"celsius\":{}.{}}}\n", i, 20 + i % 7, i % 10).as_bytes(),
        );
        i += 1;
    }
    out.truncate(n);
    out
}

#[test]
fn hello_compresses_to_the_rfc_bytes() {
    // RFC 7692 §7.2.3.1.
    // With the server's context: a message that does not shrink is sent
    // compressed all the same.
    let p = params("permessage-deflate", ContextTakeover::Both);
    let deflater = Deflater::new(&p, &config());
    assert_eq!(deflater.encode(b"Hello"), Some((RSV1, HELLO.to_vec())));
    assert!(deflater.holds_state());
    // Without, it goes as it is, and no compressor stays with the
    // connection.
    let p = params("permessage-deflate", ContextTakeover::Off);
    let deflater = Deflater::new(&p, &config().deflate_threshold(1));
    assert_eq!(deflater.encode(b"Hello"), None);
    assert!(!deflater.holds_state());
    // Unless every message is to be compressed (threshold 0).
    let deflater = Deflater::new(&p, &config());
    assert_eq!(deflater.encode(b"Hello"), Some((RSV1, HELLO.to_vec())));
}

#[test]
fn the_rfc_examples_decode() {
    let p = params("permessage-deflate", ContextTakeover::Off);
    for wire in [
        &HELLO[..],
        // §7.2.3.3: a block with no compression.
        &[
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ][..],
        // §7.2.3.4: a block with BFINAL set.
        &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00][..],
        // §7.2.3.5: two blocks in one message.
        &[
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ][..],
    ] {
        let mut inflater = Inflater::new(&p);
        assert_eq!(
            decode(&mut inflater, wire, 5).unwrap(),
            b"Hello",
            "{wire:x?}"
        );
        assert!(!inflater.holds_state());
    }
    // An empty message compresses to one zero byte (§7.2.3.6).
    let mut inflater = Inflater::new(&p);
    assert_eq!(decode(&mut inflater, &[0x00], 0).unwrap(), b"");
}

#[test]
fn the_clients_context_is_kept_only_when_agreed() {
    // RFC 7692 §7.2.3.2: the second "Hello" refers back into the first.
    let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
    let kept = params("permessage-deflate", ContextTakeover::Client);
    let mut inflater = Inflater::new(&kept);
    assert_eq!(decode(&mut inflater, &HELLO, 5).unwrap(), b"Hello");
    assert!(inflater.holds_state());
    assert_eq!(decode(&mut inflater, &second, 5).unwrap(), b"Hello");

    // Without it, the reference points before the start of the window.
    let fresh = params("permessage-deflate", ContextTakeover::Off);
    let mut inflater = Inflater::new(&fresh);
    assert_eq!(decode(&mut inflater, &HELLO, 5).unwrap(), b"Hello");
    assert_eq!(
        decode(&mut inflater, &second, 5),
        Err(ProtocolError::InvalidCompressedData)
    );
}

#[test]
fn a_final_block_keeps_the_context() {
    // §7.2.3.4's message, then §7.2.3.2's second one, which refers back.
    let p = params("permessage-deflate", ContextTakeover::Client);
    let mut inflater = Inflater::new(&p);
    let last = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    assert_eq!(decode(&mut inflater, &last, 5).unwrap(), b"Hello");
    let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
    assert_eq!(decode(&mut inflater, &second, 5).unwrap(), b"Hello");
}

#[test]
fn the_servers_context_is_kept_only_when_agreed() {
    let p = params("permessage-deflate", ContextTakeover::Both);
    assert!(!p.server_no_context_takeover && !p.client_no_context_takeover);
    let deflater = Deflater::new(&p, &config());
    // The receiving side of the same agreement: its own client_window.
    let mut inflater = Inflater::new(&p);
    let message = readings(200);
    let (_, first) = deflater.encode(&message).unwrap();
    let (_, second) = deflater.encode(&message).unwrap();
    assert!(deflater.holds_state());
    assert!(
        second.len() < 10 && second.len() < first.len(),
        "{second:x?}"
    );
    assert_eq!(decode(&mut inflater, &first, 200).unwrap(), message);
    assert_eq!(decode(&mut inflater, &second, 200).unwrap(), message);
}

#[test]
fn small_and_incompressible_messages_go_as_they_are() {
    let p = params("permessage-deflate", ContextTakeover::Off);
    let deflater = Deflater::new(&p, &config().deflate_threshold(64));
    assert_eq!(deflater.encode(&readings(63)), None);
    assert!(deflater.encode(&readings(64)).is_some());
    // xorshift noise does not shrink.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    assert_eq!(deflater.encode(&noise), None);
    let every = Deflater::new(&p, &config().deflate_threshold(0));
    assert!(every.encode(&noise).unwrap().1.len() > noise.len());
}

#[test]
fn large_messages_round_trip() {
    for takeover in [ContextTakeover::Off, ContextTakeover::Both] {
        let p = params("permessage-deflate", takeover);
        let deflater = Deflater::new(&p, &config());
        let mut inflater = Inflater::new(&p);
        for size in [100, 1000, 70_000, 300_000] {
            let message = readings(size);
            let (_, wire) = deflater.encode(&message).unwrap();
            assert!(wire.len() < size / 2 + 8, "{size}: {}", wire.len());
            assert_eq!(decode(&mut inflater, &wire, size).unwrap(), message);
        }
    }
}

#[test]
fn decompression_stops_at_the_message_limit() {
    let p = params("permessage-deflate", ContextTakeover::Off);
    let deflater = Deflater::new(&p, &config());
    // A bomb: 4 MiB of zeros in about 4 KiB.
    let (_, bomb) = deflater.encode(&vec![0; 4 << 20]).unwrap();
    assert!(bomb.len() < 8 << 10, "{}", bomb.len());
    let mut inflater = Inflater::new(&p);
    assert_eq!(
        decode(&mut inflater, &bomb, 256 << 10),
        Err(ProtocolError::MessageTooBig)
    );
    // Exactly at the limit passes; one byte over does not.
    let message = readings(10_000);
    let (_, wire) = deflater.encode(&message).unwrap();
    assert_eq!(
        decode(&mut Inflater::new(&p), &wire, 10_000).unwrap(),
        message
    );
    assert_eq!(
        decode(&mut Inflater::new(&p), &wire, 9_999),
        Err(ProtocolError::MessageTooBig)
    );
}

#[test]
fn what_does_not_decompress_fails_with_1007() {
    let p = params("permessage-deflate", ContextTakeover::Client);
    for wire in [
        // A reserved block type (BTYPE 11).
        &[0xff, 0xff, 0xff][..],
        // A stored block whose length and its complement disagree.
        &[0x00, 0x05, 0x00, 0x00, 0x00, b'H'][..],
        // A reference before the first byte.
        &[0xf2, 0x00, 0x11, 0x00, 0x00][..],
    ] {
        let result = decode(&mut Inflater::new(&p), wire, 1 << 10);
        assert_eq!(
            result,
            Err(ProtocolError::InvalidCompressedData),
            "{wire:x?}"
        );
    }
    assert_eq!(ProtocolError::InvalidCompressedData.close_code().0, 1007);
}

#[test]
fn an_8_bit_window_is_served_with_9_bits_that_fit_in_8() {
    let p = params(
        "permessage-deflate; server_max_window_bits=8",
        ContextTakeover::Off,
    );
    assert_eq!(p.server_window(), 9);
    let deflater = Deflater::new(&p, &config());
    // Repeats 300 bytes apart and closer: a 9-bit window could refer to
    // them, but zlib's matches stay within the window less 262 bytes.
    let mut message = readings(300);
    message.extend_from_within(..);
    message.extend_from_slice(&readings(2000));
    let (_, wire) = deflater.encode(&message).unwrap();
    assert!(wire.len() < message.len() / 2);
    let mut strict = Inflate::new(false, 8);
    let (out, _) = inflate_message(&mut strict, &wire, 1 << 20).unwrap();
    assert_eq!(out, message);
}
