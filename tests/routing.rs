//! What an application sees: plain HTTP routed to `on_http`, upgrades
//! decided by `on_upgrade`, the request in the handler, sending from the
//! handler and from other threads, subscriptions and the stats.

mod support;

use std::io::Write;
use std::sync::{mpsc, Mutex};
use std::thread;

use boardcast::{Accept, Config, Error, Message, Response, Sender};
use support::{Running, TIMEOUT};
use tungstenite::client::IntoClientRequest;

/// Echoes data messages.
fn echo(mut client: boardcast::Client) {
    while let Ok(Some(message)) = client.recv() {
        if message.is_data() {
            let _ = client.send(message);
        }
    }
}

#[test]
fn plain_http_goes_to_on_http() {
    let server = support::server(Config::default()).on_http(|request| match request.path() {
        "/" => Response::html("<h1>board</h1>"),
        _ => Response::text(404, "not found"),
    });
    let running = Running::start(server, echo);
    let addr = running.addr;

    let page = support::http(addr, "GET / HTTP/1.1\r\nHost: board\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200 "), "{page:?}");
    assert!(page.ends_with("\r\n\r\n<h1>board</h1>"), "{page:?}");
    let missing = support::http(addr, "GET /missing?x=1 HTTP/1.1\r\nHost: board\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing:?}");
    assert!(missing.ends_with("not found"), "{missing:?}");

    // Upgrades on the same port are still served.
    let mut ws = support::connect(addr, "/");
    support::send_text(&mut ws, "hi");
    assert_eq!(support::next_text(&mut ws), "hi");
    let stats = running.stats();
    assert_eq!(stats.handshake_failed, 0, "pages are not failed handshakes");
    assert_eq!(stats.clients, 1);
}

#[test]
fn on_upgrade_refuses_with_its_own_response_or_accepts_with_headers() {
    let server = support::server(Config::default()).on_upgrade(|request| {
        match (request.path(), request.header("authorization")) {
            ("/private", Some("Bearer good")) | ("/public", _) => {
                Ok(Accept::new().header("X-Board", "pi"))
            }
            _ => Err(Response::text(401, "token needed").header("WWW-Authenticate", "Bearer")),
        }
    });
    let running = Running::start(server, echo);
    let addr = running.addr;

    match support::try_connect(addr, format!("ws://{addr}/private")) {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            assert_eq!(response.body().as_deref(), Some(&b"token needed"[..]));
        }
        Err(e) => panic!("expected a 401, got {e}"),
        Ok(_) => panic!("expected a 401, got accepted"),
    }

    let mut request = format!("ws://{addr}/private")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Authorization", "Bearer good".parse().unwrap());
    let (mut ws, response) =
        support::try_connect_response(addr, request).expect("accepted with the token");
    assert_eq!(response.headers()["x-board"], "pi");
    support::send_text(&mut ws, "in");
    assert_eq!(support::next_text(&mut ws), "in");
    // The refusal is counted after its 401 is written, so the count may
    // lag the response the client read: wait for it, then check that the
    // accepted upgrade did not add to it.
    support::wait_until(TIMEOUT, "the refusal counted", || {
        running.stats().handshake_failed >= 1
    });
    assert_eq!(running.stats().handshake_failed, 1, "the refusal only");
}

#[test]
fn handler_sees_path_query_and_headers() {
    let running = Running::start(support::server(Config::default()), |client| {
        let request = client.request();
        let seen = format!(
            "{} {:?} {:?} {}",
            request.path(),
            request.query(),
            request.header("x-sensor"),
            request.headers().count()
        );
        let _ = client.send_text(&seen);
        echo(client);
    });
    let addr = running.addr;
    let mut request = format!("ws://{addr}/room/7?unit=c")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("X-Sensor", "42".parse().unwrap());
    let mut ws = support::try_connect(addr, request).expect("handshake");
    let seen = support::next_text(&mut ws);
    let (start, count) = seen.rsplit_once(' ').unwrap();
    assert_eq!(start, r#"/room/7 Some("unit=c") Some("42")"#);
    // Host, Connection, Upgrade, version, key and ours.
    assert!(count.parse::<usize>().unwrap() >= 6, "{seen}");
}

#[test]
fn send_from_the_handler_and_from_another_thread() {
    let (senders, sender) = mpsc::channel::<Sender>();
    let senders = Mutex::new(senders);
    let running = Running::start(support::server(Config::default()), move |client| {
        client.send_text("from the handler").unwrap();
        let sender = client.sender();
        thread::Builder::new()
            .name("test-pusher".into())
            .spawn(move || sender.send(Message::Text("from a thread".into())))
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
        senders.lock().unwrap().send(client.sender()).unwrap();
        echo(client);
    });
    let mut ws = support::connect(running.addr, "/");
    assert_eq!(support::next_text(&mut ws), "from the handler");
    assert_eq!(support::next_text(&mut ws), "from a thread");

    // A sender works while the connection is open, and reports it closed
    // once it is.
    let sender = sender.recv_timeout(TIMEOUT).unwrap();
    assert!(!sender.is_closing());
    sender.send(Message::Binary(vec![1, 2, 3])).unwrap();
    assert_eq!(
        support::next_message(&mut ws),
        tungstenite::Message::binary(vec![1, 2, 3])
    );
    support::close(ws);
    support::wait_until(TIMEOUT, "the handler returned", || {
        running.stats().clients == 0
    });
    assert!(sender.is_closing());
    assert!(matches!(
        sender.send(Message::Text("too late".into())),
        Err(Error::Closed)
    ));
}

#[test]
fn subscribe_unsubscribe_and_stats() {
    // Text commands: "sub TOPIC" and "unsub TOPIC", each acknowledged.
    let running = Running::start(support::server(Config::default()), |mut client| {
        while let Ok(Some(message)) = client.recv() {
            let Message::Text(text) = message else {
                continue;
            };
            let done = match text.split_once(' ') {
                Some(("sub", topic)) => client.subscribe(topic),
                Some(("unsub", topic)) => client.unsubscribe(topic),
                _ => false,
            };
            let _ = client.send_text(&format!("{text}: {done}"));
        }
    });
    let hub = running.hub.clone();
    let mut ws = support::connect(running.addr, "/");
    let command = |ws: &mut support::Ws, text: &str| {
        support::send_text(ws, text);
        support::next_text(ws)
    };
    assert_eq!(command(&mut ws, "sub news"), "sub news: true");
    assert_eq!(command(&mut ws, "sub news"), "sub news: false");
    assert_eq!(command(&mut ws, "sub other"), "sub other: true");
    let stats = running.stats();
    assert_eq!((stats.clients, stats.subscriptions), (1, 2));

    assert_eq!(hub.publish_text("news", "n1").queued, 1);
    assert_eq!(support::next_text(&mut ws), "n1");
    assert_eq!(command(&mut ws, "unsub news"), "unsub news: true");
    assert_eq!(command(&mut ws, "unsub news"), "unsub news: false");
    assert_eq!(
        hub.publish_text("news", "n2").queued,
        0,
        "no subscriber left"
    );
    assert_eq!(hub.publish_text("other", "o1").queued, 1);
    assert_eq!(support::next_text(&mut ws), "o1", "n2 must not arrive");
    assert_eq!(hub.subscribers("news"), 0);
    assert_eq!(hub.subscribers("other"), 1);

    support::wait_until(TIMEOUT, "delivered counts n1 and o1", || {
        hub.stats().delivered == 2
    });
    let stats = hub.stats();
    assert_eq!(stats.published, 3);
    assert_eq!(stats.subscriptions, 1);

    support::close(ws);
    support::wait_until(TIMEOUT, "the client and its subscription gone", || {
        let stats = hub.stats();
        (stats.clients, stats.subscriptions) == (0, 0)
    });
    assert_eq!(hub.subscribers("other"), 0);
}

#[test]
fn a_client_talks_while_the_hub_publishes_to_it() {
    // The hub's flusher writes to the socket without blocking while the
    // connection thread reads from it: every message the client sends must
    // reach the handler, and every reply come back, however the two
    // interleave.
    const MESSAGES: usize = 2000;
    let server = support::server(Config::default().queue_messages(1024));
    let running = Running::start(server, |client| {
        client.subscribe("ticks");
        echo(client);
    });
    let mut ws = support::connect(running.addr, "/");
    support::wait_until(TIMEOUT, "subscribed", || {
        running.hub.subscribers("ticks") == 1
    });

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = {
        let hub = running.hub.clone();
        let stop = std::sync::Arc::clone(&stop);
        thread::spawn(move || {
            // At most 512 ahead of the client, so its queue of 1024
            // never overflows, however slowly it is scheduled.
            let mut published = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && published < 1_000_000 {
                if published - hub.stats().delivered < 512 {
                    hub.publish_text("ticks", "tick");
                    published += 1;
                } else {
                    thread::yield_now();
                }
            }
        })
    };
    let mut replies = 0;
    let mut ticks = 0u64;
    for i in 0..MESSAGES {
        support::send_text(&mut ws, &format!("m{i}"));
        loop {
            match support::next_message(&mut ws) {
                tungstenite::Message::Text(t) if t.as_str() == "tick" => ticks += 1,
                tungstenite::Message::Text(t) => {
                    assert_eq!(t.as_str(), format!("m{i}"), "reply {i}");
                    replies += 1;
                    break;
                }
                other => panic!("unexpected {other:?} after {replies} replies"),
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    publisher.join().unwrap();
    eprintln!("{replies} replies among {ticks} published messages");
    assert_eq!(replies, MESSAGES);
    assert!(ticks > 0, "the hub published to the client meanwhile");
    support::close(ws);
}

const PAGE: &str = "<!doctype html><h1>board</h1>";

#[test]
fn server_selects_subprotocols_answers_head_and_limits_header_count() {
    // What `boardcast::accept` is tested for in tests/handshake.rs, on the
    // Server's path (its own connection threads, routing and deadline).
    let config = Config::default()
        .protocols(["sensors.v2", "sensors.v1"])
        .max_headers(8);
    let server = support::server(config).on_http(|_| Response::html(PAGE));
    let running = Running::start(server, |client| {
        let protocol = client
            .request()
            .header("sec-websocket-protocol")
            .map(str::to_owned);
        let _ = client.send_text(&format!("{protocol:?}"));
        echo(client);
    });
    let addr = running.addr;

    // The server's preference among the client's offers.
    let mut stream = support::tcp(addr);
    let wire = support::upgrade_request(
        "/",
        "Sec-WebSocket-Protocol: chat, sensors.v1, sensors.v2\r\n",
    );
    stream.write_all(wire.as_bytes()).unwrap();
    let response = support::HttpResponse::parse(&support::read_head(&mut stream), Vec::new());
    assert_eq!(response.status, 101, "{response:?}");
    assert_eq!(
        response.header("Sec-WebSocket-Protocol"),
        Some("sensors.v2")
    );
    let hello = support::read_frame(&mut stream).expect("the handler's text");
    assert_eq!(hello.payload, br#"Some("chat, sensors.v1, sensors.v2")"#);
    // None shared: none selected, still upgraded.
    let mut stream = support::tcp(addr);
    let wire = support::upgrade_request("/", "Sec-WebSocket-Protocol: chat\r\n");
    stream.write_all(wire.as_bytes()).unwrap();
    let response = support::HttpResponse::parse(&support::read_head(&mut stream), Vec::new());
    assert_eq!(response.status, 101, "{response:?}");
    assert_eq!(response.header("Sec-WebSocket-Protocol"), None);

    // HEAD: the page's length, no body, and the end of the connection.
    let mut stream = support::tcp(addr);
    stream
        .write_all(b"HEAD / HTTP/1.1\r\nHost: board\r\n\r\n")
        .unwrap();
    let response = support::HttpResponse::parse(&support::read_head(&mut stream), Vec::new());
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("Content-Length"),
        Some(PAGE.len().to_string().as_str())
    );
    support::expect_eof(&mut stream);
    // GET: the page itself.
    let page = support::request(addr, b"GET / HTTP/1.1\r\nHost: board\r\n\r\n");
    assert_eq!(page.body_text(), PAGE);

    // max_headers: the upgrade request has 5 headers of its own; 3 more
    // are within the limit of 8, 4 more are not.
    let extra = |n: usize| {
        (0..n)
            .map(|i| format!("X-Filler-{i}: v\r\n"))
            .collect::<String>()
    };
    let mut stream = support::tcp(addr);
    stream
        .write_all(support::upgrade_request("/", &extra(3)).as_bytes())
        .unwrap();
    let response = support::HttpResponse::parse(&support::read_head(&mut stream), Vec::new());
    assert_eq!(response.status, 101, "{response:?}");
    let refused = support::request(addr, support::upgrade_request("/", &extra(4)).as_bytes());
    assert_eq!(refused.status, 431, "{refused:?}");
    assert_eq!(refused.body_text(), "too many header fields");
    support::wait_until(TIMEOUT, "the refusal counted", || {
        running.stats().handshake_failed >= 1
    });
    assert_eq!(running.stats().handshake_failed, 1);
}
