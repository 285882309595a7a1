//! The `Sec-WebSocket-Extensions` header (RFC 6455 §9.1): a list of
//! extension offers, each a name and parameters.
//!
//! ```text
//! Sec-WebSocket-Extensions = extension-list
//! extension-list = 1#extension
//! extension = extension-token *( ";" extension-param )
//! extension-param = token [ "=" (token | quoted-string) ]
//! ```
//!
//! Whitespace (space and tab) may surround each separator; empty list
//! elements (`a, , b`) are skipped, as RFC 9110 §5.6.1 asks of a
//! recipient. A quoted value is returned unescaped.
//!
//! ```
//! use boardcast::extension::header;
//!
//! let value = "permessage-deflate; client_max_window_bits, \
//!              permessage-deflate; server_max_window_bits=\"10\"";
//! let offers = header::parse(value).unwrap();
//! assert_eq!(offers.len(), 2);
//! assert_eq!(offers[0].name, "permessage-deflate");
//! assert_eq!(offers[0].params[0].name, "client_max_window_bits");
//! assert_eq!(offers[0].params[0].value, None);
//! assert_eq!(offers[1].params[0].value.as_deref(), Some("10"));
//! assert!(header::parse("permessage-deflate; =10").is_err());
//! ```

use std::borrow::Cow;
use std::fmt;

/// One offered extension: its name and its parameters, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer<'a> {
    /// The extension's name, as sent (compare without regard to case).
    pub name: &'a str,
    /// Its parameters, in the order sent; duplicates are kept, for the
    /// extension to refuse.
    pub params: Vec<Param<'a>>,
}

/// A parameter of an [`Offer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter's name, as sent.
    pub name: &'a str,
    /// Its value, unquoted and unescaped; `None` for a bare name.
    pub value: Option<Cow<'a, str>>,
}

/// The header's value does not follow the grammar of RFC 6455 §9.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidHeader {
    /// The byte offset where the value went wrong.
    pub at: usize,
}

impl fmt::Display for InvalidHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed Sec-WebSocket-Extensions at byte {}", self.at)
    }
}

impl std::error::Error for InvalidHeader {}

/// Parses one `Sec-WebSocket-Extensions` value into its offers. For a
/// request with the header on several lines, parse each (their offers
/// follow one another, RFC 9110 §5.3).
///
/// Allocates at most one [`Offer`] per comma and one [`Param`] per
/// semicolon of `value`, and a copy of a quoted value only when it holds
/// an escape: bounded by the header's length.
///
/// # Errors
///
/// [`InvalidHeader`] where the value breaks the grammar: a missing or bad
/// token, an unterminated quoted string, a stray character.
pub fn parse(value: &str) -> Result<Vec<Offer<'_>>, InvalidHeader> {
    let mut cursor = Cursor { s: value, at: 0 };
    let mut offers = Vec::new();
    loop {
        cursor.skip_ws();
        match cursor.peek() {
            None => return Ok(offers),
            Some(b',') => {
                cursor.at += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = cursor.token()?;
        let mut params = Vec::new();
        loop {
            cursor.skip_ws();
            match cursor.peek() {
                None => break,
                Some(b',') => {
                    cursor.at += 1;
                    break;
                }
                Some(b';') => cursor.at += 1,
                Some(_) => return Err(cursor.error()),
            }
            cursor.skip_ws();
            let name = cursor.token()?;
            cursor.skip_ws();
            let value = if cursor.peek() == Some(b'=') {
                cursor.at += 1;
                cursor.skip_ws();
                Some(if cursor.peek() == Some(b'"') {
                    cursor.quoted()?
                } else {
                    Cow::Borrowed(cursor.token()?)
                })
            } else {
                None
            };
            params.push(Param { name, value });
        }
        offers.push(Offer { name, params });
    }
}

struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.at).copied()
    }

    fn error(&self) -> InvalidHeader {
        InvalidHeader { at: self.at }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// A token (RFC 9110 §5.6.2): one or more tchars.
    fn token(&mut self) -> Result<&'a str, InvalidHeader> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        if self.at == start {
            return Err(self.error());
        }
        Ok(&self.s[start..self.at])
    }

    /// A quoted string (RFC 9110 §5.6.4), the cursor on its opening quote;
    /// returns its content with the backslash escapes undone.
    fn quoted(&mut self) -> Result<Cow<'a, str>, InvalidHeader> {
        self.at += 1;
        let start = self.at;
        let mut owned: Option<String> = None;
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error());
            };
            match b {
                b'"' => {
                    let borrowed = &self.s[start..self.at];
                    self.at += 1;
                    return Ok(owned.map_or(Cow::Borrowed(borrowed), Cow::Owned));
                }
                b'\\' => {
                    let copy = owned.get_or_insert_with(|| self.s[start..self.at].to_owned());
                    self.at += 1;
                    match self.peek() {
                        Some(c) if c == b'\t' || (0x20..0x7f).contains(&c) => {
                            copy.push(char::from(c));
                            self.at += 1;
                        }
                        _ => return Err(self.error()),
                    }
                }
                // qdtext: HTAB, SP, and visible ASCII but '"' and '\'
                // (obs-text, bytes past 0x7f, is refused: no extension
                // parameter needs it).
                b'\t' | 0x20..=0x7e => {
                    if let Some(copy) = &mut owned {
                        copy.push(char::from(b));
                    }
                    self.at += 1;
                }
                _ => return Err(self.error()),
            }
        }
    }
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param<'a>(name: &'a str, value: Option<&'a str>) -> Param<'a> {
        Param {
            name,
            value: value.map(Cow::Borrowed),
        }
    }

    #[test]
    fn a_browsers_offer() {
        // What Chromium and Firefox send.
        let offers = parse("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(
            offers,
            [Offer {
                name: "permessage-deflate",
                params: vec![param("client_max_window_bits", None)],
            }]
        );
    }

    #[test]
    fn several_offers_with_values_and_whitespace() {
        let offers = parse(
            " permessage-deflate ;server_max_window_bits = 10 ;\tclient_no_context_takeover , \
             x-webkit-deflate-frame,permessage-deflate",
        )
        .unwrap();
        assert_eq!(offers.len(), 3);
        assert_eq!(
            offers[0].params,
            [
                param("server_max_window_bits", Some("10")),
                param("client_no_context_takeover", None)
            ]
        );
        assert_eq!(offers[1].name, "x-webkit-deflate-frame");
        assert!(offers[2].params.is_empty());
    }

    #[test]
    fn quoted_values_are_unescaped() {
        let offers = parse(r#"e; a="10"; b="1\0"; c="""#).unwrap();
        let values: Vec<_> = offers[0]
            .params
            .iter()
            .map(|p| p.value.as_deref().unwrap())
            .collect();
        assert_eq!(values, ["10", "10", ""]);
        assert!(matches!(offers[0].params[0].value, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn empty_elements_are_skipped() {
        assert_eq!(parse("").unwrap(), []);
        assert_eq!(parse(" , ,").unwrap(), []);
        assert_eq!(parse("a,,b").unwrap().len(), 2);
    }

    #[test]
    fn malformed_values_are_refused_where_they_break() {
        for (value, at) in [
            ("permessage-deflate;", 19),
            ("permessage-deflate; =10", 20),
            ("permessage-deflate; a=", 22),
            ("permessage-deflate; a=\"10", 25),
            ("permessage-deflate; a=\"1\\", 25),
            ("permessage-deflate a", 19),
            ("per(message)", 3),
            ("e; a=\"\u{e9}\"", 6),
            (";a", 0),
        ] {
            assert_eq!(parse(value), Err(InvalidHeader { at }), "{value:?}");
        }
    }
}
