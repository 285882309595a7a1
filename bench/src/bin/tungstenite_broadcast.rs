//! The peer fan-out server: tungstenite 0.30, a writer thread per client
//! fed by a bounded crossbeam channel, with the CLI and payload of
//! boardcast's `examples/broadcast.rs`.
//!
//! ```text
//! tungstenite_broadcast 127.0.0.1:9005 --rate 1000 --size 16 [--policy disconnect|drop-oldest|keep-latest]
//! ```
//!
//! Each payload starts with the send time (ns since the UNIX epoch) and a
//! sequence number, both 8-byte big-endian. The publisher encodes nothing:
//! it hands every client's channel a reference-counted copy of the payload
//! (`Bytes`), never blocking; a full channel (64 messages, as boardcast's
//! default `queue_messages`) applies the policy: `disconnect` drops the
//! client, `drop-oldest` drops its oldest queued message, `keep-latest`
//! keeps at most one message waiting (a channel of one, replaced). The
//! client's thread writes whatever is queued and flushes once per batch.

use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

#[derive(Clone, Copy, Debug)]
enum Policy {
    Disconnect,
    DropOldest,
    KeepLatest,
}

struct Subscriber {
    tx: Sender<Bytes>,
    /// The publisher's handle on the queue, to drop the oldest message.
    rx: Receiver<Bytes>,
}

type Subscribers = Arc<Mutex<Vec<Subscriber>>>;

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9005".to_string();
    let mut rate: u64 = 1000;
    let mut size: usize = 16;
    let mut policy = Policy::Disconnect;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--rate" => rate = value().parse().unwrap_or_else(|_| usage("bad --rate")),
            "--size" => size = value().parse().unwrap_or_else(|_| usage("bad --size")),
            "--policy" => {
                policy = match value().as_str() {
                    "disconnect" => Policy::Disconnect,
                    "drop-oldest" => Policy::DropOldest,
                    "keep-latest" => Policy::KeepLatest,
                    _ => usage("bad --policy"),
                }
            }
            _ if !arg.starts_with('-') => addr = arg,
            _ => usage(&format!("unknown option {arg}")),
        }
    }
    let size = size.max(16);
    let listener = TcpListener::bind(&addr)?;
    println!(
        "tungstenite broadcast on ws://{} : {size}-byte messages at {rate}/s ({policy:?})",
        listener.local_addr()?
    );
    let subscribers: Subscribers = Arc::default();
    let publishing = Arc::clone(&subscribers);
    thread::Builder::new()
        .name("publisher".into())
        .spawn(move || publish(&publishing, rate, size, policy))?;
    let capacity = match policy {
        Policy::KeepLatest => 1,
        _ => 64,
    };
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let subscribers = Arc::clone(&subscribers);
        thread::spawn(move || serve(stream, &subscribers, capacity));
    }
    Ok(())
}

fn serve(stream: TcpStream, subscribers: &Subscribers, capacity: usize) -> tungstenite::Result<()> {
    stream.set_nodelay(true)?;
    let mut ws = tungstenite::accept(stream).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => unreachable!("blocking stream"),
    })?;
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    subscribers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Subscriber { tx, rx: rx.clone() });
    // Writes what is queued, flushing once per batch. The channel
    // disconnects when the publisher drops this client.
    while let Ok(first) = rx.recv() {
        ws.write(Message::Binary(first))?;
        while let Ok(next) = rx.try_recv() {
            ws.write(Message::Binary(next))?;
        }
        ws.flush()?;
    }
    let _ = ws.close(Some(CloseFrame {
        code: CloseCode::Again,
        reason: "client too slow".into(),
    }));
    let _ = ws.flush();
    Ok(())
}

fn publish(subscribers: &Subscribers, rate: u64, size: usize, policy: Policy) {
    let mut payload = vec![0u8; size];
    let start = Instant::now();
    for seq in 0u64.. {
        if let Some(offset) = (seq * 1_000_000_000).checked_div(rate) {
            let due = start + Duration::from_nanos(offset);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        payload[..8].copy_from_slice(&(now.as_nanos() as u64).to_be_bytes());
        payload[8..16].copy_from_slice(&seq.to_be_bytes());
        let message = Bytes::copy_from_slice(&payload);
        let mut subscribers = subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subscribers.retain(|s| offer(s, &message, policy));
    }
}

/// Offers a message to one subscriber; false drops the subscriber.
fn offer(s: &Subscriber, message: &Bytes, policy: Policy) -> bool {
    let mut message = message.clone();
    loop {
        match s.tx.try_send(message) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(_)) if matches!(policy, Policy::Disconnect) => return false,
            Err(TrySendError::Full(back)) => {
                message = back;
                let _ = s.rx.try_recv();
            }
        }
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("tungstenite_broadcast: {problem}");
    }
    eprintln!("usage: tungstenite_broadcast [ADDR] [--rate MSGS_PER_SEC] [--size BYTES] [--policy disconnect|drop-oldest|keep-latest]");
    std::process::exit(2);
}
