//! Tests of `outbox.rs`.

use super::*;

use crate::frame::OpCode;
use crate::hub::{Delivery, Policy, Subscriber};

fn outbox(max_messages: usize, max_bytes: usize) -> Arc<Outbox> {
    Outbox::new(max_messages, max_bytes, None, None, Arc::default())
}

fn frame(len: usize) -> Encoded {
    Encoded::direct(&Frame::new(OpCode::Binary, &vec![0; len], None))
}

#[test]
fn handler_sends_are_bounded_in_bytes() {
    let outbox = outbox(32, 1000);
    let short = Duration::from_millis(20);
    assert!(outbox.send(frame(400), short));
    assert!(outbox.send(frame(400), short));
    // 800 + 404 > 1000: no room, however many message slots are free.
    assert!(!outbox.send(frame(400), short));
    // Taking one frame makes room for a sender that waits.
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| outbox.send(frame(400), Duration::from_secs(10)));
        assert!(outbox.try_take().is_some());
        outbox.notify_space();
        // A wake-up that came before the waiter slept is not lost: it
        // checks for room under the lock first.
        assert!(waiter.join().unwrap());
    });
}

fn published(tag: u8) -> Encoded {
    let payload = [tag];
    let frame = Frame::new(OpCode::Binary, &payload, None);
    Encoded::new(Some(Arc::from("t")), 1, u64::from(tag), &frame)
}

fn direct(tag: u8) -> Encoded {
    Encoded::direct(&Frame::new(OpCode::Binary, &[tag], None))
}

/// The last payload byte of each queued frame, in order.
fn drain(outbox: &Outbox) -> Vec<u8> {
    std::iter::from_fn(|| outbox.try_take())
        .map(|f| *f.payload().last().unwrap())
        .collect()
}

#[test]
fn drop_oldest_drops_published_messages_only() {
    let outbox = outbox(4, 1 << 20);
    let offer = |tag| outbox.offer(&published(tag), Policy::DropOldest);
    assert!(matches!(offer(1), Delivery::Queued));
    assert!(outbox.send(direct(2), Duration::from_millis(20)));
    assert!(matches!(offer(3), Delivery::Queued));
    assert!(matches!(offer(4), Delivery::Queued));
    // Full, with the handler's message in it: the new one gives way.
    assert!(matches!(offer(5), Delivery::DroppedOldest));
    assert_eq!(drain(&outbox), [1, 2, 3, 4]);
    // Full of published messages: the oldest gives way.
    for tag in 6..=9 {
        assert!(matches!(offer(tag), Delivery::Queued));
    }
    assert!(matches!(offer(10), Delivery::DroppedOldest));
    assert_eq!(drain(&outbox), [7, 8, 9, 10]);
}

#[test]
fn drop_oldest_leaves_freed_room_to_a_waiting_handler() {
    let outbox = outbox(2, 1 << 20);
    let offer = |tag| outbox.offer(&published(tag), Policy::DropOldest);
    offer(1);
    offer(2);
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| outbox.send(direct(100), Duration::from_secs(10)));
        let deadline = Instant::now() + Duration::from_secs(10);
        while outbox.waiting.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the handler never waited");
            thread::yield_now();
        }
        // The publisher goes on while the handler waits: it does not
        // take the room it makes by evicting.
        for tag in 3..50 {
            assert!(matches!(offer(tag), Delivery::DroppedOldest));
        }
        assert!(outbox.try_take().is_some());
        outbox.notify_space();
        assert!(waiter.join().unwrap(), "the handler's send timed out");
    });
    assert_eq!(drain(&outbox), [2, 100]);
}

#[test]
fn a_message_larger_than_the_bound_waits_for_an_empty_queue() {
    let outbox = outbox(32, 1000);
    let short = Duration::from_millis(20);
    assert!(outbox.send(frame(5000), short));
    assert!(!outbox.send(frame(10), short));
    assert!(outbox.try_take().is_some());
    assert!(outbox.send(frame(5000), short));
}

#[test]
fn closing_releases_a_waiting_sender() {
    let outbox = outbox(32, 100);
    assert!(outbox.send(frame(90), Duration::from_millis(20)));
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| outbox.send(frame(90), Duration::from_secs(60)));
        outbox.close(Some(CloseCode::NORMAL), "").unwrap();
        assert!(!waiter.join().unwrap());
    });
}

#[test]
fn a_handler_send_times_out_on_a_full_message_queue() {
    // Room for bytes, none for messages: the send waits its timeout, then
    // fails while the connection is open (the Sender reports TimedOut).
    let outbox = outbox(2, 1 << 20);
    let short = Duration::from_millis(20);
    assert!(outbox.send(direct(1), short));
    assert!(outbox.send(direct(2), short));
    let start = Instant::now();
    assert!(!outbox.send(direct(3), Duration::from_millis(100)));
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "gave up early"
    );
    assert!(!outbox.is_closing(), "a timeout does not close");
    assert_eq!(drain(&outbox), [1, 2]);
}

#[test]
fn disconnect_fires_on_whichever_bound_is_reached_first() {
    // The message count: four slots, bytes to spare.
    let by_count = outbox(4, 1 << 20);
    for tag in 1..=4 {
        assert!(matches!(
            by_count.offer(&published(tag), Policy::Disconnect),
            Delivery::Queued
        ));
    }
    assert!(matches!(
        by_count.offer(&published(5), Policy::Disconnect),
        Delivery::Disconnected
    ));
    assert!(by_count.is_closing());

    // The bytes: slots to spare, room for two 400-byte frames.
    let by_bytes = outbox(1000, 1000);
    let big = |tag: u8| {
        let payload = [tag; 400];
        Encoded::new(
            Some(Arc::from("t")),
            1,
            u64::from(tag),
            &Frame::new(OpCode::Binary, &payload, None),
        )
    };
    assert!(matches!(
        by_bytes.offer(&big(1), Policy::Disconnect),
        Delivery::Queued
    ));
    assert!(matches!(
        by_bytes.offer(&big(2), Policy::Disconnect),
        Delivery::Queued
    ));
    assert!(matches!(
        by_bytes.offer(&big(3), Policy::Disconnect),
        Delivery::Disconnected
    ));
    assert!(by_bytes.is_closing());
    // What was queued is freed: it will not be sent.
    assert_eq!(drain(&by_bytes), Vec::<u8>::new());
}

#[test]
fn unsubscribing_drops_a_pending_keep_latest_frame() {
    let outbox = outbox(1, 1 << 20);
    let offer = |tag| outbox.offer(&published(tag), Policy::KeepLatest);
    assert!(matches!(offer(1), Delivery::Queued));
    // The queue is full: the newest waits beside it, and is superseded.
    assert!(matches!(offer(2), Delivery::Queued));
    assert!(matches!(offer(3), Delivery::Superseded));
    assert_eq!(outbox.pending().latest.len(), 1);
    outbox.unsubscribed("other");
    assert_eq!(outbox.pending().latest.len(), 1, "another topic's");
    outbox.unsubscribed("t");
    assert!(outbox.pending().latest.is_empty(), "still pending");
    assert_eq!(drain(&outbox), [1]);
}
