//! Registry auth: parsing `WWW-Authenticate` challenges, and bearer tokens
//! from the token service they name (anonymous, basic credentials, or an
//! OAuth2 refresh token), cached per scope until shortly before expiry.

use super::creds::Credentials;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How a registry wants to be authenticated, from its `/v2/` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// `/v2/` answered 200: no auth.
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parse one `WWW-Authenticate` value: `Bearer realm="…",service="…"` or
/// `Basic realm="…"`. Unknown schemes give None.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = match header.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&header[..i], &header[i..]),
        None => (header, ""),
    };
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(pk, _)| pk.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        let realm = get("realm").filter(|r| !r.is_empty())?;
        return Some(Challenge::Bearer {
            realm,
            service: get("service"),
        });
    }
    None
}

/// `k=v, k="quoted \" v"` pairs (RFC 7235 auth-params).
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it
            .peek()
            .is_some_and(|c| c.is_ascii_whitespace() || *c == ',')
        {
            it.next();
        }
        let mut key = String::new();
        while let Some(&c) = it.peek() {
            if c == '=' || c == ',' || c.is_ascii_whitespace() {
                break;
            }
            key.push(c);
            it.next();
        }
        if key.is_empty() {
            break;
        }
        while it.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            it.next();
        }
        if it.peek() != Some(&'=') {
            continue;
        }
        it.next();
        while it.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            it.next();
        }
        let mut val = String::new();
        if it.peek() == Some(&'"') {
            it.next();
            while let Some(c) = it.next() {
                match c {
                    '\\' => {
                        if let Some(n) = it.next() {
                            val.push(n);
                        }
                    }
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(&c) = it.peek() {
                if c == ',' {
                    break;
                }
                val.push(c);
                it.next();
            }
            val = val.trim().to_string();
        }
        out.push((key, val));
    }
    out
}

/// The pull scope of a repository, as docker asks for it.
pub fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// A push's scopes, as docker asks for them in one token request:
/// `repository:REPO:pull,push`, plus `repository:FROM:pull` for the
/// repository a blob is mounted from. Space-separated (OAuth2's form);
/// [`token_url`] sends each as its own `scope` parameter.
pub fn push_scope(repo: &str, from: Option<&str>) -> String {
    let mut s = format!("repository:{repo}:pull,push");
    if let Some(f) = from {
        s.push(' ');
        s.push_str(&pull_scope(f));
    }
    s
}

/// Percent-encode a query value (RFC 3986 unreserved characters kept).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The token service's URL for one scope.
pub fn token_url(realm: &str, service: Option<&str>, scope: &str) -> String {
    let mut q = Vec::new();
    if let Some(s) = service {
        q.push(format!("service={}", query_escape(s)));
    }
    for sc in scope.split(' ').filter(|s| !s.is_empty()) {
        q.push(format!("scope={}", query_escape(sc)));
    }
    if q.is_empty() {
        return realm.to_string();
    }
    let sep = if realm.contains('?') { '&' } else { '?' };
    format!("{realm}{sep}{}", q.join("&"))
}

#[derive(Clone, Debug)]
pub struct Token {
    pub value: String,
    /// When to stop using it (a little before the service says it expires).
    pub renew_at: Instant,
}

/// A token service's answer: `token` (Docker) or `access_token` (OAuth2);
/// `expires_in` defaults to 60 s per the distribution spec.
pub fn parse_token_response(body: &[u8], now: Instant) -> Result<Token> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::msg(format!("token service: invalid JSON answer: {e}")))?;
    let value = ["token", "access_token"]
        .iter()
        .find_map(|k| v.get(k).and_then(|t| t.as_str()).filter(|t| !t.is_empty()))
        .ok_or_else(|| Error::msg("token service: answer has no token"))?
        .to_string();
    let secs = v
        .get("expires_in")
        .and_then(|e| e.as_u64())
        .filter(|&e| e > 0)
        .unwrap_or(60);
    // Renew early enough that a token is not used across its expiry.
    let margin = (secs / 5).clamp(1, 30);
    Ok(Token {
        value,
        renew_at: now + Duration::from_secs(secs.saturating_sub(margin).max(1)),
    })
}

/// The form an OAuth2 refresh-token exchange posts (docker's identity
/// token flow).
pub fn refresh_form(creds: &Credentials, service: Option<&str>, scope: &str) -> Option<String> {
    let rt = creds.identity_token.as_deref()?;
    let mut f = vec![
        "grant_type=refresh_token".to_string(),
        format!("refresh_token={}", query_escape(rt)),
        "client_id=runway".to_string(),
        "access_type=offline".to_string(),
    ];
    if let Some(s) = service {
        f.push(format!("service={}", query_escape(s)));
    }
    if !scope.is_empty() {
        f.push(format!("scope={}", query_escape(scope)));
    }
    Some(f.join("&"))
}

/// Tokens by scope.
#[derive(Default)]
pub struct TokenCache {
    map: HashMap<String, Token>,
}

impl TokenCache {
    pub fn get(&self, scope: &str, now: Instant) -> Option<&Token> {
        self.map.get(scope).filter(|t| now < t.renew_at)
    }
    pub fn put(&mut self, scope: &str, t: Token) {
        self.map.insert(scope.to_string(), t);
    }
    /// Forget a token the registry refused.
    pub fn drop_value(&mut self, scope: &str, value: &str) {
        if self.map.get(scope).is_some_and(|t| t.value == value) {
            self.map.remove(scope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("basic"), Some(Challenge::Basic));
        let c = parse_challenge(r#"bearer  Realm = "http://a/t?x=1" , service=svc"#);
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "http://a/t?x=1".into(),
                service: Some("svc".into())
            })
        );
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge(""), None);
        let c = parse_challenge(r#"Bearer realm="a\"b""#);
        assert!(matches!(c, Some(Challenge::Bearer { realm, .. }) if realm == "a\"b"));
    }

    #[test]
    fn token_urls() {
        assert_eq!(
            token_url("https://auth/token", Some("reg svc"), "repository:a/b:pull"),
            "https://auth/token?service=reg%20svc&scope=repository%3Aa%2Fb%3Apull"
        );
        assert_eq!(token_url("https://a/t?x=1", None, ""), "https://a/t?x=1");
        let two = push_scope("me/app", Some("lib/base"));
        assert_eq!(two, "repository:me/app:pull,push repository:lib/base:pull");
        assert_eq!(
            token_url("http://t/token", None, &two),
            "http://t/token?scope=repository%3Ame%2Fapp%3Apull%2Cpush&scope=repository%3Alib%2Fbase%3Apull"
        );
        assert_eq!(push_scope("a", None), "repository:a:pull,push");
        assert_eq!(
            token_url("https://a/t?x=1", Some("s"), ""),
            "https://a/t?x=1&service=s"
        );
    }

    #[test]
    fn token_answers() {
        let now = Instant::now();
        let t = parse_token_response(br#"{"token":"abc","expires_in":300}"#, now).unwrap();
        assert_eq!(t.value, "abc");
        assert!(
            t.renew_at > now + Duration::from_secs(200)
                && t.renew_at < now + Duration::from_secs(300)
        );
        let t = parse_token_response(br#"{"access_token":"x"}"#, now).unwrap();
        assert_eq!(t.value, "x");
        assert!(parse_token_response(br#"{"token":""}"#, now).is_err());
        assert!(parse_token_response(b"<html>", now).is_err());
        let mut c = TokenCache::default();
        c.put("s", t);
        assert!(c.get("s", now).is_some());
        assert!(c.get("s", now + Duration::from_secs(61)).is_none());
        c.drop_value("s", "other");
        assert!(c.get("s", now).is_some());
        c.drop_value("s", "x");
        assert!(c.get("s", now).is_none());
    }
}
