//! Hosts and origins: the `host[:port]` of a `Host` header, an `Origin` or
//! an absolute-form target, whether an `Origin` is the request's own
//! (same-origin), and whether a `Host` names this server (DNS rebinding).
//! Pure string work, no name resolution.

use core::net::{Ipv4Addr, Ipv6Addr};

/// A `host [":" port]` (RFC 3986 §3.2.2–3.2.3), checked for its syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Authority<'a> {
    /// The host as sent: a name, an IPv4 address, or `[IPv6]`, without a
    /// final dot (`board.local.` is `board.local`).
    host: &'a str,
    /// The port, if one was given (`host:` gives none).
    port: Option<u16>,
}

impl<'a> Authority<'a> {
    /// Parses `host[:port]`; `None` if it is not one (empty host, a bad
    /// character, a port that is not a number below 65536, userinfo).
    pub(crate) fn parse(text: &'a str) -> Option<Authority<'a>> {
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let close = rest.find(']')?;
            let host = &text[..close + 2];
            rest[..close].parse::<Ipv6Addr>().ok()?;
            match &rest[close + 1..] {
                "" => (host, ""),
                tail => (host, tail.strip_prefix(':')?),
            }
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, port),
                None => (text, ""),
            }
        };
        let port = match port {
            "" => None,
            digits if digits.bytes().all(|b| b.is_ascii_digit()) => Some(digits.parse().ok()?),
            _ => return None,
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.is_empty() || !(host.starts_with('[') || host.bytes().all(is_reg_name)) {
            return None;
        }
        Some(Authority { host, port })
    }

    /// Whether the host is an IP address rather than a name.
    fn is_ip(&self) -> bool {
        self.host.starts_with('[') || self.host.parse::<Ipv4Addr>().is_ok()
    }

    /// Whether both name the same host and port, `default` standing for a
    /// missing port on either side (the default port of the scheme).
    fn same_as(&self, other: &Authority<'_>, default: u16) -> bool {
        self.host.eq_ignore_ascii_case(other.host)
            && self.port.unwrap_or(default) == other.port.unwrap_or(default)
    }
}

/// A `reg-name` or IPv4 byte (RFC 3986 §3.2.2), without `%`-encoding: no
/// browser sends one in a `Host`.
fn is_reg_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

/// The default port of a scheme a browser may send in an `Origin`, or in
/// an absolute-form target; `None` for any other scheme.
pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    ["http", "ws"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
        .then_some(80)
        .or_else(|| {
            ["https", "wss"]
                .iter()
                .any(|s| scheme.eq_ignore_ascii_case(s))
                .then_some(443)
        })
}

/// Splits `scheme://rest` into the default port of its scheme and `rest`.
pub(crate) fn split_scheme(uri: &str) -> Option<(u16, &str)> {
    let (scheme, rest) = uri.split_once("://")?;
    Some((default_port(scheme)?, rest))
}

/// Whether `origin` (an `Origin` header: `scheme://host[:port]`) is the
/// origin of a request whose `Host` is `host`: same host, without regard
/// to ASCII case, and same port, a missing one being the default port of
/// the origin's scheme. `null`, a list of origins, a path, or another
/// scheme (`file:`, extensions) is never same-origin.
///
/// A `Host` without a port matches an origin on its scheme's default port,
/// `http` or `https` alike: behind a proxy that ends TLS the server cannot
/// tell which scheme the browser used.
pub(crate) fn is_same_origin(origin: &str, host: &str) -> bool {
    let Some((default, rest)) = split_scheme(origin) else {
        return false;
    };
    match (Authority::parse(rest), Authority::parse(host)) {
        (Some(origin), Some(host)) => origin.same_as(&host, default),
        _ => false,
    }
}

/// Whether an absolute-form target's `scheme://authority` and the `Host`
/// header name the same host and port (RFC 9112 §3.2.2).
pub(crate) fn target_matches_host(target: &str, host: &Authority<'_>) -> bool {
    let Some((default, rest)) = split_scheme(target) else {
        return false;
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Authority::parse(&rest[..end]).is_some_and(|target| target.same_as(host, default))
}

/// Whether a `Host` names this server, so that a page or WebSocket on it
/// cannot be reached through a DNS name an attacker controls (DNS
/// rebinding). Ours are:
///
/// - IP addresses: a rebinding needs a name, and a browser's page on
///   `http://192.168.1.20:8080` is the board's own;
/// - names public DNS cannot answer for: `localhost` and `*.localhost`
///   (RFC 6761 §6.3), `*.local` (mDNS, RFC 6762), and single-label names
///   (`raspberrypi`, resolved on the LAN);
/// - `hostname`, the machine's name, as the caller read it;
/// - the configured `allowed` names: `*` allows any host, `.example.com`
///   allows `example.com` and every name under it, any other entry that
///   name alone (without regard to ASCII case, without port).
pub(crate) fn is_served(host: &Authority<'_>, hostname: Option<&str>, allowed: &[String]) -> bool {
    if host.is_ip() {
        return true;
    }
    let name = host.host;
    let under = |suffix: &str| {
        name.len() > suffix.len()
            && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
            && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    let special = !name.contains('.')
        || name.eq_ignore_ascii_case("localhost")
        || under("localhost")
        || under("local");
    let machine = hostname
        .map(|h| h.strip_suffix('.').unwrap_or(h))
        .is_some_and(|h| !h.is_empty() && name.eq_ignore_ascii_case(h));
    special
        || machine
        || allowed.iter().any(|entry| match entry.strip_prefix('.') {
            _ if entry == "*" => true,
            Some(suffix) => name.eq_ignore_ascii_case(suffix) || under(suffix),
            None => name.eq_ignore_ascii_case(entry.strip_suffix('.').unwrap_or(entry)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority(text: &str) -> Option<(&str, Option<u16>)> {
        Authority::parse(text).map(|a| (a.host, a.port))
    }

    #[test]
    fn authorities() {
        assert_eq!(authority("board.local"), Some(("board.local", None)));
        assert_eq!(
            authority("Board.Local.:8080"),
            Some(("Board.Local", Some(8080)))
        );
        assert_eq!(
            authority("192.168.1.20:80"),
            Some(("192.168.1.20", Some(80)))
        );
        assert_eq!(authority("[::1]:8080"), Some(("[::1]", Some(8080))));
        assert_eq!(authority("[fe80::1]"), Some(("[fe80::1]", None)));
        assert_eq!(authority("board:"), Some(("board", None)));
        for bad in [
            "",
            ":80",
            ".",
            "board:http",
            "board:65536",
            "board:-1",
            "a b",
            "user@board",
            "[::1",
            "[::1]x",
            "[zz]",
            "::1",
            "board/x",
            "böard",
        ] {
            assert_eq!(authority(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn same_origin() {
        let yes = [
            ("http://board.local:8080", "board.local:8080"),
            ("HTTP://BOARD.local:8080", "board.LOCAL:8080"),
            ("http://board.local", "board.local"),
            ("http://board.local", "board.local:80"),
            ("http://board.local:80", "board.local"),
            ("https://board.local", "board.local"),
            ("https://board.local", "board.local:443"),
            ("http://192.168.1.20:8080", "192.168.1.20:8080"),
            ("http://[::1]:8080", "[::1]:8080"),
        ];
        for (origin, host) in yes {
            assert!(is_same_origin(origin, host), "{origin} {host}");
        }
        let no = [
            ("http://evil.example", "board.local"),
            ("http://board.local.evil.example", "board.local"),
            ("http://board.local:8081", "board.local:8080"),
            ("http://board.local:8080", "board.local"),
            ("https://board.local", "board.local:80"),
            ("null", "board.local"),
            ("file://", "board.local"),
            ("chrome-extension://abcdef", "abcdef"),
            ("http://board.local/", "board.local"),
            ("http://board.local http://evil.example", "board.local"),
            ("http://user@board.local", "board.local"),
            ("board.local", "board.local"),
        ];
        for (origin, host) in no {
            assert!(!is_same_origin(origin, host), "{origin} {host}");
        }
    }

    #[test]
    fn absolute_targets_against_host() {
        let host = Authority::parse("board.local").unwrap();
        assert!(target_matches_host("ws://board.local/ws", &host));
        assert!(target_matches_host("http://BOARD.local:80?x", &host));
        assert!(!target_matches_host("ws://evil.example/ws", &host));
        assert!(target_matches_host("wss://board.local/ws", &host));
        assert!(!target_matches_host("wss://board.local:80/ws", &host));
        let host = Authority::parse("board.local:8080").unwrap();
        assert!(target_matches_host("ws://board.local:8080", &host));
        assert!(!target_matches_host("ws://board.local/", &host));
    }

    #[test]
    fn served_names() {
        let served = |host: &str, hostname: Option<&str>, allowed: &[&str]| {
            let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
            is_served(&Authority::parse(host).unwrap(), hostname, &allowed)
        };
        for host in [
            "192.168.1.20:8080",
            "10.0.0.1",
            "[::1]:8080",
            "[fe80::1]",
            "localhost:8080",
            "LOCALHOST",
            "board.localhost",
            "raspberrypi.local:8080",
            "raspberrypi.local.",
            "raspberrypi",
        ] {
            assert!(served(host, None, &[]), "{host}");
        }
        for host in [
            "evil.example",
            "192.168.1.20.nip.io",
            "localhost.evil.example",
            "local.evil.example",
            "board.lan",
        ] {
            assert!(!served(host, None, &[]), "{host}");
        }
        assert!(served("board.example.com", Some("board.example.com"), &[]));
        assert!(served(
            "Board.Example.Com:8080",
            Some("board.example.com\n".trim()),
            &[]
        ));
        assert!(!served("board.example.com", Some(""), &[]));
        assert!(served("board.lan", None, &["board.lan"]));
        assert!(served("x.board.lan", None, &[".board.lan"]));
        assert!(served("board.lan", None, &[".board.lan"]));
        assert!(!served("xboard.lan", None, &[".board.lan"]));
        assert!(!served("x.board.lan", None, &["board.lan"]));
        assert!(served("evil.example", None, &["*"]));
    }
}
