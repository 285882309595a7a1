//! The peer: tungstenite 0.30's echo server, sync, a thread per connection,
//! the same shape as boardcast's `examples/echo.rs`.
//!
//! ```text
//! tungstenite_echo 127.0.0.1:9004
//! ```

use std::net::{TcpListener, TcpStream};
use std::thread;

use tungstenite::Message;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9004".into());
    let listener = TcpListener::bind(&addr)?;
    println!("tungstenite echo on ws://{}", listener.local_addr()?);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        thread::spawn(move || echo(stream));
    }
    Ok(())
}

fn echo(stream: TcpStream) -> tungstenite::Result<()> {
    stream.set_nodelay(true)?;
    let mut ws = tungstenite::accept(stream).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => unreachable!("blocking stream"),
    })?;
    loop {
        match ws.read()? {
            message @ (Message::Text(_) | Message::Binary(_)) => ws.send(message)?,
            // Pongs and close replies are queued by read(); send them.
            _ => ws.flush()?,
        }
    }
}
