//! Web origins (`scheme://host[:port]`) in the serialization browsers use, which is the text the
//! Web eID signature covers.

use std::fmt;

use thiserror::Error;

/// Longest origin accepted (the Web eID application refuses longer ones).
pub const MAX_ORIGIN_LEN: usize = 255;

/// Why a string is not an origin the token can be bound to.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OriginError {
    #[error("an origin is scheme://host[:port]: {0}")]
    Syntax(&'static str),
    #[error("scheme {0:?} is not https (http is accepted for loopback hosts only)")]
    Scheme(String),
    #[error("origin longer than {MAX_ORIGIN_LEN} characters")]
    TooLong,
}

/// A parsed origin: lowercase scheme and host, the port only when it is not the scheme's
/// default. [`Origin::as_str`] is the serialization a browser gives (`https://example.org`,
/// `https://example.org:8443`, `http://localhost:8080`).
///
/// Accepted: `https` with any host; `http` only for `localhost`, `127.0.0.1` and `[::1]`
/// (development). A trailing `/` is tolerated; a path, query, fragment or user info is refused
/// (the reference validators accept only scheme, host and port). Hosts must be ASCII (an
/// internationalised name is given in its punycode form, as browsers serialize it).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    serialized: String,
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({})", self.serialized)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.serialized)
    }
}

fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        // IPv6 literal.
        let Some(inner) = inner.strip_suffix(']') else {
            return false;
        };
        return !inner.is_empty()
            && inner.contains(':')
            && inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    }
    !host.is_empty()
        && host.len() <= 253
        && !host.starts_with('.')
        && !host.contains("..")
        && host.split('.').all(|label| {
            label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

impl Origin {
    /// Parses and normalises an origin.
    pub fn parse(text: &str) -> Result<Self, OriginError> {
        if text.len() > MAX_ORIGIN_LEN {
            return Err(OriginError::TooLong);
        }
        let (scheme, rest) = text
            .split_once("://")
            .ok_or(OriginError::Syntax("missing ://"))?;
        let scheme = scheme.to_ascii_lowercase();
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@', '\\']) {
            return Err(OriginError::Syntax(
                "path, query, fragment or user info present",
            ));
        }
        if !rest.is_ascii() || rest.chars().any(|c| c.is_ascii_control() || c == ' ') {
            return Err(OriginError::Syntax("host is not printable ASCII"));
        }
        // Split the port off: after the last ':' unless that ':' is inside an IPv6 literal.
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (rest, None),
        };
        let host = host.to_ascii_lowercase();
        if !valid_host(&host) {
            return Err(OriginError::Syntax("invalid host"));
        }
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" if is_loopback(&host) => 80,
            _ => return Err(OriginError::Scheme(scheme)),
        };
        let port = match port {
            None => None,
            Some(p) => {
                if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(OriginError::Syntax("invalid port"));
                }
                let n: u32 = p.parse().map_err(|_| OriginError::Syntax("invalid port"))?;
                if n == 0 || n > 65535 {
                    return Err(OriginError::Syntax("port out of range"));
                }
                (n != default_port).then_some(n)
            }
        };
        let serialized = match port {
            Some(p) => format!("{scheme}://{host}:{p}"),
            None => format!("{scheme}://{host}"),
        };
        Ok(Self { serialized })
    }

    /// The serialization (what is hashed into the token signature and the AA challenge).
    pub fn as_str(&self) -> &str {
        &self.serialized
    }
}

impl std::str::FromStr for Origin {
    type Err = OriginError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        for (input, want) in [
            ("https://example.org", "https://example.org"),
            ("HTTPS://Example.ORG/", "https://example.org"),
            ("https://example.org:443", "https://example.org"),
            ("https://example.org:8443", "https://example.org:8443"),
            ("http://localhost:8080", "http://localhost:8080"),
            ("http://127.0.0.1", "http://127.0.0.1"),
            ("https://[::1]:4433", "https://[::1]:4433"),
            (
                "https://xn--bcher-kva.example",
                "https://xn--bcher-kva.example",
            ),
        ] {
            assert_eq!(Origin::parse(input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn refuses() {
        for input in [
            "example.org",
            "http://example.org",
            "ftp://example.org",
            "https://",
            "https://example.org/path",
            "https://example.org?q",
            "https://example.org#f",
            "https://user@example.org",
            "https://example.org:0",
            "https://example.org:65536",
            "https://example.org:",
            "https://exa mple.org",
            "https://bücher.example",
            "https://[::1",
            "https://a..b",
        ] {
            assert!(Origin::parse(input).is_err(), "{input}");
        }
    }
}
