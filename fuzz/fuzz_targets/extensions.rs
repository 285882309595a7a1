//! `Sec-WebSocket-Extensions` parsing and permessage-deflate negotiation on
//! arbitrary header values: never panics, allocates within the header's
//! bounds, and an agreement is one the offers allowed: a response that
//! parses back, with no parameter twice, windows of 8 to 15 bits, a limit
//! on the client's window only when an offer let the server set one, and
//! the server's window within every limit of the offer it answered.
#![no_main]

use boardcast::extension::header;
use boardcast::extension::negotiate::negotiate;
use boardcast::{Config, ContextTakeover};
use libfuzzer_sys::fuzz_target;

#[path = "alloc.rs"]
mod alloc;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    // Header lines: the text split at newlines.
    let values: Vec<&str> = text.split('\n').collect();

    alloc::reset();
    for value in &values {
        if let Ok(offers) = header::parse(value) {
            let params: usize = offers.iter().map(|o| o.params.len()).sum();
            assert!(offers.len() + params <= value.len(), "{offers:?}");
        }
    }
    // At most one offer per byte and one param per byte of a value, in
    // vectors that double from 4; a copy only of escaped text (shorter
    // than the value). Found by this target: an offer "ge" takes 4 slots
    // of 40 bytes, more than a bound proportional to the text alone.
    let unit = std::mem::size_of::<header::Offer<'_>>().max(std::mem::size_of::<header::Param<'_>>());
    let longest = values.iter().map(|v| v.len()).max().unwrap_or(0);
    let bound = unit * (2 * longest).max(4);
    assert!(alloc::largest() <= bound, "allocated {} > {bound}", alloc::largest());

    let takeover = [ContextTakeover::Off, ContextTakeover::Client, ContextTakeover::Both][usize::from(n % 3)];
    let config = Config::default().deflate(true).deflate_window_bits(9 + (n >> 2) % 7);
    let Some(agreed) = negotiate(values.iter().copied(), &config, takeover) else { return };

    let response = agreed.to_string();
    let parsed = header::parse(&response).expect("the response parses");
    assert_eq!(parsed.len(), 1);
    let names: Vec<&str> = parsed[0].params.iter().map(|p| p.name).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{response}");
    for bits in [agreed.server_max_window_bits, agreed.client_max_window_bits].into_iter().flatten() {
        assert!((8..=15).contains(&bits), "{response}");
    }
    if takeover != ContextTakeover::Both {
        assert!(agreed.server_no_context_takeover, "{response}");
    }

    // Some offer the server could have answered allows what it said.
    let offers: Vec<header::Offer<'_>> = values
        .iter()
        .filter_map(|v| header::parse(v).ok())
        .flatten()
        .filter(|o| o.name.eq_ignore_ascii_case("permessage-deflate"))
        .collect();
    let allows = |offer: &header::Offer<'_>| {
        let value = |name: &str| {
            offer
                .params
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(name))
                .map(|p| p.value.as_deref().and_then(|v| v.parse::<u8>().ok()))
        };
        let client_ok = match (agreed.client_max_window_bits, value("client_max_window_bits")) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(bits), Some(limit)) => limit.is_none_or(|l| bits <= l),
        };
        let server_ok = match value("server_max_window_bits") {
            None => true,
            Some(limit) => agreed.server_max_window_bits.zip(limit).is_some_and(|(b, l)| b <= l),
        };
        let asked_no_server_context = value("server_no_context_takeover").is_some();
        client_ok && server_ok && (!asked_no_server_context || agreed.server_no_context_takeover)
    };
    assert!(offers.iter().any(allows), "{response} answers none of {values:?}");
});
