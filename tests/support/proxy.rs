//! A TCP proxy on loopback between a browser and a server, that can do to
//! the link what Wi-Fi does: drop every connection at once ([`Proxy::cut`]),
//! or stop forwarding without closing anything ([`Proxy::freeze`]), until
//! [`Proxy::thaw`].

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

/// The proxy; its threads end with the connections (the listener's with
/// the test process).
pub struct Proxy {
    pub addr: SocketAddr,
    live: Arc<Mutex<Vec<TcpStream>>>,
    frozen: Arc<(Mutex<bool>, Condvar)>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards each connection to `to`.
    pub fn start(to: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let frozen: Arc<(Mutex<bool>, Condvar)> = Arc::default();
        let (list, gate) = (Arc::clone(&live), Arc::clone(&frozen));
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(to) else {
                    return;
                };
                let mut live = list.lock().unwrap();
                live.retain(|s| s.peer_addr().is_ok());
                live.push(client.try_clone().unwrap());
                live.push(server.try_clone().unwrap());
                drop(live);
                let gate2 = Arc::clone(&gate);
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    gate2,
                );
                pipe(server, client, Arc::clone(&gate));
            }
        });
        Proxy { addr, live, frozen }
    }

    /// Drops every connection; returns how many there were.
    pub fn cut(&self) -> usize {
        let mut live = self.live.lock().unwrap();
        for stream in live.iter() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let count = live.len() / 2;
        live.clear();
        count
    }

    /// Stops forwarding, both ways, with every connection left open: what
    /// arrives waits (in the proxy, then in the kernel's buffers).
    pub fn freeze(&self) {
        *self.frozen.0.lock().unwrap() = true;
    }

    /// Forwards again, what waited first.
    pub fn thaw(&self) {
        *self.frozen.0.lock().unwrap() = false;
        self.frozen.1.notify_all();
    }
}

/// Copies `from` to `to` on a thread of its own until either ends, holding
/// each chunk while the gate is frozen.
fn pipe(mut from: TcpStream, mut to: TcpStream, gate: Arc<(Mutex<bool>, Condvar)>) {
    thread::spawn(move || {
        let mut buf = [0; 16 << 10];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let (lock, thawed) = &*gate;
            let mut frozen = lock.lock().unwrap();
            while *frozen {
                frozen = thawed.wait(frozen).unwrap();
            }
            drop(frozen);
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
