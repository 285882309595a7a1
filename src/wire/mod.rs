//! The wire formats boardcast adds on top of RFC 6455 for hub messages,
//! specified in `docs/protocol.md`: the `boardcast.v1` subprotocol
//! ([`v1`]), which carries each message's topic and sequence number and
//! lets a client subscribe and resume by itself, and the JSON of
//! `GET /latest` ([`json`]).
//!
//! Like the core, these are plain functions over bytes and strings; each
//! published message is written in a transport's format once (a hub
//! message [form](crate::hub::Encoded)), whatever the number of its
//! subscribers.

pub mod json;
pub mod v1;
