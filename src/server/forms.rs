//! Which form of a published message a client's outbox writes: the plain
//! frame, the `boardcast.v1` envelope, or either compressed for a client
//! that agreed to permessage-deflate (the `deflate` feature). Each form is
//! made once per message, on first use, and shared by every client that
//! writes it (`hub::Encoded::form`).
//!
//! A compressed form is made with a fixed window, so that one compression
//! serves every client whose agreement allows it: 4 KiB (12 bits) for a
//! client that let the server use at least that, 512 bytes (9 bits) for
//! one that limited it below (a window of 8 bits is served with 9: see
//! [`Params::server_window`](crate::extension::negotiate::Params::server_window)).
//! A message that would not shrink is written as it is, RSV1 clear.

use crate::hub::Form;
use crate::wire::v1;

/// The form a client's outbox writes published messages in: `v1` for a
/// `boardcast.v1` client, `window` the server window a permessage-deflate
/// agreement allows (as a power of two); `None` for the plain frame.
pub(crate) fn form(v1: bool, window: Option<u8>) -> Option<Form> {
    match (v1, deflated(v1, window)) {
        (_, Some(form)) => Some(form),
        (true, None) => Some(v1::ENVELOPE),
        (false, None) => None,
    }
}

#[cfg(not(feature = "deflate"))]
fn deflated(_v1: bool, _window: Option<u8>) -> Option<Form> {
    None
}

#[cfg(feature = "deflate")]
fn deflated(v1: bool, window: Option<u8>) -> Option<Form> {
    let small = window? < 12;
    Some(match (v1, small) {
        (false, false) => compressed::PLAIN_12,
        (false, true) => compressed::PLAIN_9,
        (true, false) => compressed::ENVELOPE_12,
        (true, true) => compressed::ENVELOPE_9,
    })
}

#[cfg(feature = "deflate")]
mod compressed {
    use std::borrow::Cow;

    use crate::extension::deflate::{compress_shared, RSV1};
    use crate::frame::{Frame, FrameHeader};
    use crate::hub::{Encoded, Form};
    use crate::wire::v1;

    // Slots 0 to 2 are the uncompressed forms of `wire` (the envelope, the
    // SSE event, the long-poll JSON).
    pub(super) const PLAIN_12: Form = Form::new(3, plain_12);
    pub(super) const PLAIN_9: Form = Form::new(4, plain_9);
    pub(super) const ENVELOPE_12: Form = Form::new(5, envelope_12);
    pub(super) const ENVELOPE_9: Form = Form::new(6, envelope_9);

    fn plain_12(message: &Encoded) -> Vec<u8> {
        compress(message.frame(), 12)
    }

    fn plain_9(message: &Encoded) -> Vec<u8> {
        compress(message.frame(), 9)
    }

    fn envelope_12(message: &Encoded) -> Vec<u8> {
        compress(message.form(v1::ENVELOPE), 12)
    }

    fn envelope_9(message: &Encoded) -> Vec<u8> {
        compress(message.form(v1::ENVELOPE), 9)
    }

    /// `frame` (a whole unmasked frame the server made) with its payload
    /// compressed and RSV1 set; the frame as it is when that would not
    /// shrink it.
    fn compress(frame: &[u8], window_bits: u8) -> Vec<u8> {
        let Ok(Some((header, used))) = FrameHeader::decode(frame) else {
            return frame.to_vec();
        };
        match compress_shared(&frame[used..], window_bits) {
            Some(payload) => {
                Frame::with_payload(true, RSV1, header.opcode, Cow::Owned(payload), None).to_vec()
            }
            None => frame.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_the_form_its_agreement_allows() {
        assert!(form(false, None).is_none());
        assert!(form(true, None).is_some());
        #[cfg(feature = "deflate")]
        {
            use crate::frame::{Frame, OpCode};
            use crate::hub::Encoded;
            use std::sync::Arc;

            let payload = r#"{"celsius":41.2,"humidity":0.35,"pressure":1013.2,"celsius2":41.2}"#;
            let frame = Frame::new(OpCode::Text, payload.as_bytes(), None);
            let message = Encoded::new(Some(Arc::from("sensors")), 1, 7, &frame);
            for window in [8, 9, 11, 12, 15] {
                let plain = message.form(form(false, Some(window)).unwrap());
                assert_eq!(plain[0], 0xC1, "FIN, RSV1, text");
                assert!(plain.len() < frame.len());
                let envelope = message.form(form(true, Some(window)).unwrap());
                assert_eq!(envelope[0], 0xC1);
            }
            // Made once per message and form: the same bytes each time.
            let a = message.form(form(false, Some(15)).unwrap()).as_ptr();
            assert_eq!(message.form(form(false, Some(12)).unwrap()).as_ptr(), a);
            // Too small to shrink: the frame as it is.
            let tiny = Encoded::new(
                Some(Arc::from("t")),
                1,
                1,
                &Frame::new(OpCode::Text, b"1", None),
            );
            assert_eq!(tiny.form(form(false, Some(15)).unwrap()), tiny.frame());
        }
    }
}
