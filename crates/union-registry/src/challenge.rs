//! `WWW-Authenticate` challenges (RFC 7235) as registries send them on 401.
//!
//! Distribution-style registries answer `Bearer realm="https://auth.example/token",service="…",
//! scope="repository:app:pull"` (token flow, docker/distribution `docs/spec/auth/token.md`) or
//! `Basic realm="…"` (htpasswd). One header may carry several challenges separated by commas.

use std::collections::BTreeMap;

/// One parsed challenge: the scheme (lower-cased) and its parameters (names lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer`, `basic`, …
    pub scheme: String,
    /// Auth parameters such as `realm`, `service`, `scope`.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter by (lower-case) name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parses every challenge in a `WWW-Authenticate` header value; malformed tails are ignored.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip_ws_and_commas();
        let Some(scheme) = p.token() else { break };
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        loop {
            p.skip_ws();
            let save = p.i;
            let Some(name) = p.token() else {
                // token68 (e.g. `Basic abc==`): not used by registries; skip to the next comma.
                p.skip_until_comma();
                break;
            };
            p.skip_ws();
            if !p.eat(b'=') {
                // A bare token: the next challenge's scheme.
                p.i = save;
                break;
            }
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token().map(str::to_string)
            };
            let Some(value) = value else { break };
            challenge.params.insert(name.to_ascii_lowercase(), value);
            p.skip_ws();
            if !p.eat(b',') {
                break;
            }
        }
        out.push(challenge);
        if p.i >= p.s.len() {
            break;
        }
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn skip_until_comma(&mut self) {
        while !matches!(self.peek(), None | Some(b',')) {
            self.i += 1;
        }
    }
    /// RFC 7230 `token` characters (plus `/` and `=`-free token68-ish chars are excluded).
    fn token(&mut self) -> Option<&'a str> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let tchar = c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
            if !tchar {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| std::str::from_utf8(&self.s[start..self.i]).unwrap_or(""))
    }
    fn quoted(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        // Unterminated: take what we have; registries in the wild are not always strict.
        Some(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_from_docker_hub() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull""#;
        let c = parse_challenges(h);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/python:pull"));
    }

    #[test]
    fn basic_and_multiple_challenges() {
        let c = parse_challenges(r#"Basic realm="basic-realm""#);
        assert_eq!(
            (c[0].scheme.as_str(), c[0].param("realm")),
            ("basic", Some("basic-realm"))
        );

        let c = parse_challenges(
            r#"Basic realm="a, b", Bearer realm="https://x/token" , service=reg,error="insufficient_scope""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("realm"), Some("a, b"));
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("service"), Some("reg"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for h in [
            "",
            ",",
            "Bearer",
            "Bearer realm",
            "Bearer realm=\"unterminated",
            "Basic abc==",
            "=,=,",
            "Bearer a=\"\\\"",
        ] {
            let _ = parse_challenges(h);
        }
        assert_eq!(
            parse_challenges("BEARER Realm=x")[0].param("realm"),
            Some("x")
        );
        assert_eq!(
            parse_challenges(r#"Bearer realm="a\"b""#)[0].param("realm"),
            Some("a\"b")
        );
    }
}
