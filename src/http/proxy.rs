//! Which proxy a request goes through, with Go's rules (what docker and
//! podman do): HTTPS_PROXY for https URLs, HTTP_PROXY for http ones (upper
//! or lower case), NO_PROXY exceptions, and never a proxy for loopback.
//! The client reaches both schemes through a proxy with CONNECT.

use std::net::IpAddr;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    pub https: Option<String>,
    pub http: Option<String>,
    pub no_proxy: String,
}

fn var(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

impl ProxyEnv {
    pub fn from_env() -> ProxyEnv {
        ProxyEnv {
            https: var(&["HTTPS_PROXY", "https_proxy"]),
            http: var(&["HTTP_PROXY", "http_proxy"]),
            no_proxy: var(&["NO_PROXY", "no_proxy"]).unwrap_or_default(),
        }
    }

    /// The proxy URL for `url`, if any.
    pub fn for_url(&self, url: &str) -> Option<&str> {
        let (scheme, rest) = url.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let (host, port) = split_host_port(authority);
        let port = port.unwrap_or(if scheme == "https" { "443" } else { "80" });
        if host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        {
            return None;
        }
        if no_proxy_matches(&self.no_proxy, host, port) {
            return None;
        }
        match scheme {
            "https" => self.https.as_deref(),
            "http" => self.http.as_deref(),
            _ => None,
        }
    }
}

/// `[::1]:5000` -> (`::1`, Some("5000")); `a.b` -> (`a.b`, None).
fn split_host_port(a: &str) -> (&str, Option<&str>) {
    if let Some(rest) = a.strip_prefix('[') {
        let (h, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (h, after.strip_prefix(':'));
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (a, None),
    }
}

/// Go's NO_PROXY: `*`; `host`, `.domain` / `*.domain` (subdomains), plain
/// `domain` (itself and subdomains); IPs and CIDRs; each optionally with
/// `:port`.
pub fn no_proxy_matches(no_proxy: &str, host: &str, port: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().ok();
    for entry in no_proxy
        .split([',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if entry == "*" {
            return true;
        }
        let entry = entry.to_ascii_lowercase();
        if let Some((net, bits)) = entry.split_once('/') {
            if let (Some(ip), Ok(net), Ok(bits)) = (ip, net.parse::<IpAddr>(), bits.parse::<u32>())
            {
                if in_cidr(ip, net, bits) {
                    return true;
                }
            }
            continue;
        }
        let (ehost, eport) = split_host_port(&entry);
        if eport.is_some_and(|p| p != port) {
            continue;
        }
        if let (Some(ip), Ok(eip)) = (ip, ehost.parse::<IpAddr>()) {
            if ip == eip {
                return true;
            }
            continue;
        }
        let ehost = ehost.strip_prefix('*').unwrap_or(ehost);
        if let Some(suffix) = ehost.strip_prefix('.') {
            if host.ends_with(&format!(".{suffix}")) {
                return true;
            }
        } else if host == ehost || host.ends_with(&format!(".{ehost}")) {
            return true;
        }
    }
    false
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(no: &str) -> ProxyEnv {
        ProxyEnv {
            https: Some("http://sp:3128".into()),
            http: Some("http://p:3128".into()),
            no_proxy: no.into(),
        }
    }

    #[test]
    fn scheme_picks_the_proxy_and_loopback_is_direct() {
        let e = env("");
        assert_eq!(e.for_url("https://ghcr.io/v2/"), Some("http://sp:3128"));
        assert_eq!(e.for_url("http://10.1.2.3:5000/v2/"), Some("http://p:3128"));
        assert_eq!(e.for_url("http://127.0.0.1:5000/v2/"), None);
        assert_eq!(e.for_url("https://127.8.9.1/v2/"), None);
        assert_eq!(e.for_url("https://localhost:5000/v2/"), None);
        assert_eq!(e.for_url("https://[::1]:5000/v2/"), None);
        let only_http = ProxyEnv {
            https: None,
            ..env("")
        };
        assert_eq!(only_http.for_url("https://ghcr.io/v2/"), None);
    }

    #[test]
    fn no_proxy_like_go() {
        let e = env("example.com, .corp.net,*.wild.org,10.0.0.0/8,192.168.1.5,reg.x:5000");
        assert_eq!(e.for_url("https://example.com/v2/"), None);
        assert_eq!(e.for_url("https://a.example.com/v2/"), None);
        assert_eq!(
            e.for_url("https://notexample.com/v2/"),
            Some("http://sp:3128")
        );
        assert_eq!(e.for_url("https://corp.net/v2/"), Some("http://sp:3128"));
        assert_eq!(e.for_url("https://r.corp.net/v2/"), None);
        assert_eq!(e.for_url("https://r.wild.org/v2/"), None);
        assert_eq!(e.for_url("https://10.20.30.40:5000/v2/"), None);
        assert_eq!(e.for_url("https://11.0.0.1/v2/"), Some("http://sp:3128"));
        assert_eq!(e.for_url("https://192.168.1.5/v2/"), None);
        assert_eq!(e.for_url("https://reg.x:5000/v2/"), None);
        assert_eq!(e.for_url("https://reg.x/v2/"), Some("http://sp:3128"));
        assert_eq!(env("*").for_url("https://ghcr.io/v2/"), None);
        assert!(no_proxy_matches("127.0.0.1", "127.0.0.1", "5000"));
    }
}
