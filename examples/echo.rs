//! An echo server, one thread per connection: every text or binary message
//! comes back as it was sent. It is the server the Autobahn conformance run
//! (`scripts/autobahn.sh`) drives.
//!
//! ```text
//! cargo run --release --example echo -- 127.0.0.1:9001
//! ```

use std::net::TcpListener;
use std::thread;

use boardcast::{Config, Error, Message};

fn main() -> std::io::Result<()> {
    env_logger::init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr)?;
    println!("echo server on ws://{}", listener.local_addr()?);
    // Autobahn's 9.x cases send messages of up to 16 MiB; the library's
    // defaults stay sized for a board.
    let config = Config::default()
        .max_message_size(16 << 20)
        .max_frame_size(16 << 20);
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                log::warn!("accept failed: {e}");
                continue;
            }
        };
        let config = config.clone();
        thread::Builder::new()
            .name("echo-client".into())
            .stack_size(config.stack_size)
            .spawn(move || {
                let _ = stream.set_nodelay(true);
                if let Err(e) = echo(stream, &config) {
                    log::info!("connection ended: {e}");
                }
            })?;
    }
    Ok(())
}

fn echo(stream: std::net::TcpStream, config: &Config) -> Result<(), Error> {
    let mut connection = boardcast::accept(stream, config)?;
    while let Some(message) = connection.recv()? {
        if let Message::Text(_) | Message::Binary(_) = message {
            connection.send(message)?;
        }
    }
    Ok(())
}
