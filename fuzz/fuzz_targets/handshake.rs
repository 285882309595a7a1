//! The upgrade request parser on arbitrary bytes: never panics, never
//! allocates, stays within the size limit, and a complete request is
//! `Partial` at every shorter prefix.
#![no_main]

use boardcast::handshake::{Request, Status};
use boardcast::Config;
use libfuzzer_sys::fuzz_target;

#[path = "alloc.rs"]
mod alloc;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

fuzz_target!(|data: &[u8]| {
    let config = Config::default().max_request_size(1024).max_headers(16);
    alloc::reset();
    let parsed = Request::parse(data, &config);
    if let Ok(Status::Complete(request)) = &parsed {
        let _ = (request.method(), request.path(), request.query(), request.host());
        let _ = request.headers().count();
        let _ = request.validate(&config);
        let _ = request.check_host(&config, Some("board.example.com"));
    }
    assert_eq!(alloc::count(), 0, "parsing and validating allocate nothing");
    match parsed {
        Ok(Status::Complete(request)) => {
            let len = request.len();
            assert!(len <= data.len() && len <= config.max_request_size);
            for cut in [0, len / 2, len - 1] {
                assert_eq!(Request::parse(&data[..cut], &config), Ok(Status::Partial));
            }
        }
        Ok(Status::Partial) => assert!(data.len() < config.max_request_size),
        Err(e) => assert!(matches!(e.status(), 400 | 405 | 426 | 431)),
    }
});
