//! The frame header codec: decoding never panics, a decoded header
//! re-encodes to a header that decodes the same, and every strict prefix of
//! a complete header asks for more bytes.
#![no_main]

use boardcast::frame::{apply_mask, FrameHeader, MAX_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match FrameHeader::decode(data) {
        Ok(Some((header, used))) => {
            assert!((2..=MAX_HEADER_LEN).contains(&used) && used <= data.len());
            assert!(header.len >> 63 == 0);
            for cut in 0..used {
                assert_eq!(FrameHeader::decode(&data[..cut]), Ok(None));
            }
            let mut out = [0; MAX_HEADER_LEN];
            let n = header.encode(&mut out);
            assert!(n <= used, "re-encoding uses the shortest length");
            assert_eq!(FrameHeader::decode(&out[..n]), Ok(Some((header, n))));
            // Masking twice restores the payload, in any split.
            if let Some(key) = header.mask {
                let original = &data[used..];
                let mut payload = original.to_vec();
                let cut = payload.len() / 3;
                let offset = apply_mask(&mut payload[..cut], key, 0);
                apply_mask(&mut payload[cut..], key, offset);
                apply_mask(&mut payload, key, 0);
                assert_eq!(payload, original);
            }
        }
        Ok(None) => assert!(data.len() < MAX_HEADER_LEN),
        Err(e) => assert_eq!(e.close_code().0, 1002),
    }
});
