//! Tungstenite clients: a third-party client over a blocking socket with
//! read and write timeouts.

use std::io;
use std::net::{SocketAddr, TcpStream};

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Response as WsResponse;
use tungstenite::protocol::WebSocketConfig;

use super::tcp;

/// A tungstenite client over a blocking socket.
pub type Ws = tungstenite::WebSocket<TcpStream>;

/// A tungstenite client connected to `path`.
pub fn connect(addr: SocketAddr, path: &str) -> Ws {
    try_connect(addr, format!("ws://{addr}{path}")).expect("websocket handshake")
}

/// A tungstenite client with a 4 KiB read buffer (its default is 128 KiB),
/// for tests that open many.
pub fn connect_small(addr: SocketAddr, path: &str) -> Ws {
    let config = WebSocketConfig::default()
        .read_buffer_size(4 << 10)
        .write_buffer_size(0);
    let (ws, _) = tungstenite::client::client_with_config(
        format!("ws://{addr}{path}"),
        tcp(addr),
        Some(config),
    )
    .expect("websocket handshake");
    ws
}

/// A tungstenite handshake for `request`; the error if it is refused.
pub fn try_connect(
    addr: SocketAddr,
    request: impl IntoClientRequest,
) -> Result<Ws, tungstenite::Error> {
    try_connect_response(addr, request).map(|(ws, _)| ws)
}

/// As [`try_connect`], also returning the 101 response.
pub fn try_connect_response(
    addr: SocketAddr,
    request: impl IntoClientRequest,
) -> Result<(Ws, WsResponse), tungstenite::Error> {
    match tungstenite::client(request, tcp(addr)) {
        Ok(connected) => Ok(connected),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => {
            panic!("the handshake timed out")
        }
    }
}

/// The next data or close message, skipping pings and pongs.
pub fn next_message(ws: &mut Ws) -> tungstenite::Message {
    for _ in 0..1000 {
        match ws.read() {
            Ok(tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_)) => {}
            Ok(message) => return message,
            Err(e) => panic!("client read failed: {e}"),
        }
    }
    panic!("a thousand pings and no message");
}

/// The next message, which must be text.
pub fn next_text(ws: &mut Ws) -> String {
    match next_message(ws) {
        tungstenite::Message::Text(text) => text.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Sends a text message.
pub fn send_text(ws: &mut Ws, text: &str) {
    ws.send(tungstenite::Message::text(text))
        .expect("client send");
}

/// Reads until the close frame; returns its code (None if it had none).
pub fn read_close(ws: &mut Ws) -> Option<u16> {
    for _ in 0..10_000 {
        match ws.read() {
            Ok(tungstenite::Message::Close(frame)) => return frame.map(|f| f.code.into()),
            Ok(_) => {}
            Err(e) => panic!("connection failed before its close frame: {e}"),
        }
    }
    panic!("ten thousand messages and no close frame");
}

/// Sends the close reply tungstenite queued, then reads until the server
/// ends the connection.
pub fn finish_close(ws: &mut Ws) {
    let _ = ws.flush();
    for _ in 0..10_000 {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return,
            Err(tungstenite::Error::Io(e)) if !is_timeout(&e) => return,
            Err(e) => panic!("the server did not end the connection: {e}"),
        }
    }
    panic!("ten thousand messages after the close");
}

/// Closes from the client side and waits for the server to end it.
pub fn close(mut ws: Ws) {
    ws.close(None).expect("client close");
    finish_close(&mut ws);
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
