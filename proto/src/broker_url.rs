//! Broker URLs: `mqtts://[user[:pass]@]host[:port]` and `mqtt://…` / `tcp://…`.
//!
//! Shared by the agent and the controller so both read `--broker` the same way. The password
//! never appears in `Display`, `Debug` or an error message: URLs end up in logs.

use std::fmt;
use std::net::Ipv6Addr;

/// Port of `mqtts://` URLs without one (IANA "secure-mqtt").
pub const DEFAULT_TLS_PORT: u16 = 8883;
/// Port of `mqtt://` and `tcp://` URLs without one.
pub const DEFAULT_PLAIN_PORT: u16 = 1883;

/// Where and how to reach an MQTT broker.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    /// TLS (`mqtts://`) or plain TCP (`mqtt://`, `tcp://`).
    pub tls: bool,
    /// Host name or IP address; an IPv6 address without its brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// MQTT user name, percent-decoded.
    pub username: Option<String>,
    /// MQTT password, percent-decoded. Never printed.
    pub password: Option<String>,
}

/// Why a broker URL was refused. Messages name the part that is wrong, never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerUrlError {
    /// No `scheme://` at all.
    #[error("broker URL has no scheme: expected mqtts://HOST[:PORT] or mqtt://HOST[:PORT]")]
    MissingScheme,
    /// The URL does not start with a supported scheme.
    #[error("unsupported broker URL scheme \"{0}\": expected mqtts://, mqtt:// or tcp://")]
    Scheme(String),
    /// Nothing between the scheme and the port.
    #[error("broker URL has no host: expected mqtts://HOST[:PORT]")]
    MissingHost,
    /// The host contains characters no host name or IP address has.
    #[error("invalid host \"{0}\" in broker URL")]
    InvalidHost(String),
    /// An IPv6 address without brackets, or a bracketed address that is not IPv6.
    #[error(
        "invalid IPv6 address \"{0}\" in broker URL: write it in brackets, e.g. mqtts://[::1]:8883"
    )]
    InvalidIpv6(String),
    /// The port is not a number from 1 to 65535.
    #[error("invalid port \"{0}\" in broker URL: expected a number from 1 to 65535")]
    InvalidPort(String),
    /// Something after the host and port (a path, query or fragment).
    #[error("unexpected \"{0}\" after the host in broker URL: a broker URL has no path (percent-encode '/', '?' and '#' in a user name or password)")]
    Path(String),
    /// `@` with nothing before it, or `:password@` without a user name.
    #[error("empty user name in broker URL")]
    EmptyUsername,
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8 once decoded.
    #[error("invalid percent-encoding in the {0} of the broker URL")]
    PercentEncoding(&'static str),
}

impl BrokerAddress {
    /// Parses a broker URL. A trailing `/` is allowed; any other path is not.
    pub fn parse(url: &str) -> Result<BrokerAddress, BrokerUrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(BrokerUrlError::MissingScheme)?;
        let (tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "mqtts" => (true, DEFAULT_TLS_PORT),
            "mqtt" | "tcp" => (false, DEFAULT_PLAIN_PORT),
            _ => return Err(BrokerUrlError::Scheme(scheme.to_string())),
        };
        let rest = rest.trim_end_matches('/');
        // The user info may itself contain '/', '?' or '#' only percent-encoded, so the
        // authority ends at the first of them.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if !tail.is_empty() {
            // A '/' in an unencoded password would put the rest of it here.
            let shown = if tail.contains('@') { "…" } else { tail };
            return Err(BrokerUrlError::Path(shown.to_string()));
        }
        // The last '@' ends the user info, so an unencoded '@' in a password still works.
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let (user, pass) = match userinfo.split_once(':') {
                    Some((user, pass)) => (user, Some(pass)),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(BrokerUrlError::EmptyUsername);
                }
                let user =
                    percent_decode(user).ok_or(BrokerUrlError::PercentEncoding("user name"))?;
                let pass = pass
                    .map(|p| percent_decode(p).ok_or(BrokerUrlError::PercentEncoding("password")))
                    .transpose()?;
                (Some(user), pass)
            }
        };
        let (host, port) = split_host_port(hostport)?;
        let port = match port {
            None => default_port,
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port != 0 => port,
                _ => return Err(BrokerUrlError::InvalidPort(text.to_string())),
            },
        };
        Ok(BrokerAddress {
            tls,
            host,
            port,
            username,
            password,
        })
    }
}

impl BrokerAddress {
    /// The URL with the password, percent-encoded, for handing this address to another
    /// parser (an embedded agent's configuration). Never log it; `Display` is for logs.
    pub fn to_url_with_password(&self) -> String {
        let mut url = String::from(if self.tls { "mqtts://" } else { "mqtt://" });
        if let Some(user) = &self.username {
            url.push_str(&percent_encode(user));
            if let Some(password) = &self.password {
                url.push(':');
                url.push_str(&percent_encode(password));
            }
            url.push('@');
        }
        url.push_str(&self.host_port());
        url
    }

    fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Splits `host[:port]` or `[v6][:port]`; the host is checked, the port is not yet.
fn split_host_port(hostport: &str) -> Result<(String, Option<&str>), BrokerUrlError> {
    if let Some(bracketed) = hostport.strip_prefix('[') {
        let (address, after) = bracketed
            .split_once(']')
            .ok_or_else(|| BrokerUrlError::InvalidIpv6(hostport.to_string()))?;
        if address.parse::<Ipv6Addr>().is_err() {
            return Err(BrokerUrlError::InvalidIpv6(address.to_string()));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| BrokerUrlError::Path(after.to_string()))?,
            ),
        };
        return Ok((address.to_string(), port));
    }
    let (host, port) = match hostport.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (hostport, None),
    };
    if let Some(port) = port {
        if port.contains(':') {
            return Err(BrokerUrlError::InvalidIpv6(hostport.to_string()));
        }
    }
    if host.is_empty() {
        return Err(BrokerUrlError::MissingHost);
    }
    let valid = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !valid {
        return Err(BrokerUrlError::InvalidHost(host.to_string()));
    }
    Ok((host.to_string(), port))
}

/// Decodes `%XX` escapes; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Escapes everything but RFC 3986's unreserved characters, so that the text can neither
/// end nor split the user info when the URL is read back.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl fmt::Display for BrokerAddress {
    /// The URL with the password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.tls { "mqtts://" } else { "mqtt://" })?;
        if let Some(user) = &self.username {
            f.write_str(&percent_encode(user))?;
            if self.password.is_some() {
                f.write_str(":***")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host_port())
    }
}

impl fmt::Debug for BrokerAddress {
    // Derived Debug would print the password into any `{:?}` log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerAddress")
            .field("tls", &self.tls)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> BrokerAddress {
        match BrokerAddress::parse(url) {
            Ok(address) => address,
            Err(e) => panic!("{url}: {e}"),
        }
    }

    #[test]
    fn schemes_set_tls_and_default_ports() {
        for (url, tls, port) in [
            ("mqtts://broker", true, 8883),
            ("MQTTS://broker", true, 8883),
            ("mqtt://broker", false, 1883),
            ("tcp://broker", false, 1883),
            ("mqtts://broker:9000", true, 9000),
            ("mqtt://broker:1884/", false, 1884),
        ] {
            let address = parse(url);
            assert_eq!((address.tls, address.port), (tls, port), "{url}");
            assert_eq!(address.host, "broker", "{url}");
        }
    }

    #[test]
    fn user_and_password_are_percent_decoded_and_not_part_of_the_host() {
        let address = parse("mqtts://dev%2D1:p%40ss@10.0.0.5:8884");
        assert_eq!(address.host, "10.0.0.5");
        assert_eq!(address.port, 8884);
        assert_eq!(address.username.as_deref(), Some("dev-1"));
        assert_eq!(address.password.as_deref(), Some("p@ss"));
    }

    #[test]
    fn user_without_password() {
        let address = parse("mqtt://alice@broker");
        assert_eq!(address.username.as_deref(), Some("alice"));
        assert_eq!(address.password, None);
        assert_eq!(address.host, "broker");
    }

    #[test]
    fn unencoded_at_in_password_belongs_to_the_password() {
        let address = parse("mqtt://u:a@b@broker:1");
        assert_eq!(address.password.as_deref(), Some("a@b"));
        assert_eq!(address.host, "broker");
    }

    #[test]
    fn ipv6_in_brackets() {
        let address = parse("mqtts://[::1]:8884");
        assert_eq!((address.host.as_str(), address.port), ("::1", 8884));
        assert_eq!(parse("mqtt://u:p@[fe80::1]").port, 1883);
        assert_eq!(
            parse("mqtt://[fe80::1]").to_string(),
            "mqtt://[fe80::1]:1883"
        );
    }

    #[test]
    fn display_hides_the_password() {
        let address = parse("mqtts://dev:secret@broker");
        assert_eq!(address.to_string(), "mqtts://dev:***@broker:8883");
        assert!(!format!("{address:?}").contains("secret"));
        assert_eq!(parse("tcp://u@h:2").to_string(), "mqtt://u@h:2");
    }

    #[test]
    fn display_reads_back_as_the_same_user() {
        let address = parse("mqtt://a%3Ab%40c@h");
        assert_eq!(address.username.as_deref(), Some("a:b@c"));
        assert_eq!(parse(&address.to_string()).username, address.username);
    }

    #[test]
    fn the_url_with_password_reads_back_as_the_same_address() {
        for url in [
            "mqtt://broker:1883",
            "mqtts://[::1]:8883",
            "mqtt://u%3A1:p%40ss%2F%3A%25@10.0.0.5:1",
            "mqtt://only-user@h:2",
            "mqtts://u:@h:3",
        ] {
            let address = parse(url);
            assert_eq!(parse(&address.to_url_with_password()), address, "{url}");
        }
    }

    #[test]
    fn errors_name_what_is_wrong() {
        use BrokerUrlError::*;
        for (url, error) in [
            ("http://x", Scheme("http".into())),
            ("broker:1883", MissingScheme),
            ("mqtt://", MissingHost),
            ("mqtt://:1883", MissingHost),
            ("mqtt://x:notaport", InvalidPort("notaport".into())),
            ("mqtt://x:0", InvalidPort("0".into())),
            ("mqtt://x:65536", InvalidPort("65536".into())),
            ("mqtt://x:", InvalidPort("".into())),
            ("mqtt://::1", InvalidIpv6("::1".into())),
            ("mqtt://[zz::1]:1", InvalidIpv6("zz::1".into())),
            ("mqtt://[::1", InvalidIpv6("[::1".into())),
            ("mqtt://x/path", Path("/path".into())),
            ("mqtt://x?q", Path("?q".into())),
            ("mqtt://bad host", InvalidHost("bad host".into())),
            ("mqtt://@x", EmptyUsername),
            ("mqtt://:p@x", EmptyUsername),
            ("mqtt://u:%zz@x", PercentEncoding("password")),
            ("mqtt://%4@x", PercentEncoding("user name")),
            ("mqtt://u:%ff@x", PercentEncoding("password")),
        ] {
            assert_eq!(BrokerAddress::parse(url), Err(error), "{url}");
        }
    }

    #[test]
    fn errors_never_contain_the_password() {
        for url in [
            "mqtt://u:hunter2@x:bad",
            "mqtt://u:hunter2@x/p",
            "mqtt://u:hunter2@",
            "mqtt://u:hunter2@b d",
            "mqtt://u:hun/ter2@x",
            "u:hunter2@x",
        ] {
            let error = BrokerAddress::parse(url).unwrap_err().to_string();
            assert!(!error.contains("hunter2"), "{url}: {error}");
        }
    }
}
