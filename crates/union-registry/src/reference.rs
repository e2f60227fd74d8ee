//! Image references (`[registry/]repository[:tag][@digest]`) with Docker's normalization rules.
//!
//! The grammar follows the distribution project's `reference` package: the first path component is a
//! registry only if it contains `.` or `:`, is `localhost`, or has upper-case letters; otherwise the
//! reference is on Docker Hub, where one-component names live under `library/`.

use std::fmt;
use std::str::FromStr;

/// The registry name Docker Hub references normalize to.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// Longest repository name (without registry) the distribution spec accepts.
const MAX_NAME_LEN: usize = 255;
/// Longest tag the distribution spec accepts.
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference `{input}`: {reason}")]
pub struct ReferenceError {
    /// The string as given.
    pub input: String,
    /// What is wrong with it, naming the offending part.
    pub reason: String,
}

impl ImageReference {
    /// Parses and normalizes a reference; a reference with neither tag nor digest gets tag `latest`.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let err = |reason: String| ReferenceError {
            input: input.to_string(),
            reason,
        };
        if input.is_empty() {
            return Err(err("it is empty".into()));
        }
        if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(format!("it contains the character {c:?}")));
        }
        if input.contains("://") {
            return Err(err(
                "it must not have a URL scheme (write `host/repo:tag`)".into()
            ));
        }

        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                validate_digest(digest).map_err(err)?;
                (rest, Some(digest.to_string()))
            }
            None => (input, None),
        };
        // The tag separator is the last `:` after the last `/`; a `:` before it belongs to a port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                validate_tag(tag).map_err(err)?;
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(err("the repository name is empty".into()));
        }

        let (registry, path) = split_registry(name);
        let registry = match registry {
            Some(host) => {
                validate_registry(host).map_err(err)?;
                if host == "index.docker.io" || host == DOCKER_HUB_API_HOST {
                    DOCKER_HUB.to_string()
                } else {
                    host.to_string()
                }
            }
            None => DOCKER_HUB.to_string(),
        };
        validate_path(path).map_err(err)?;
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if repository.len() > MAX_NAME_LEN {
            return Err(err(format!(
                "the repository name is longer than {MAX_NAME_LEN} characters"
            )));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry as named in the reference (`docker.io` for Docker Hub), with its port if any.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) that serves the registry API: `registry-1.docker.io` for Docker Hub.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// The repository path inside the registry, e.g. `library/python`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one (`latest` when neither tag nor digest was given).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:…`), if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What to put after `/manifests/` in the registry API: the digest if pinned, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for ImageReference {
    /// The fully qualified form, e.g. `docker.io/library/python:3.11`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageReference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Splits `host/path` into registry and path with Docker's "is the first component a host?" rule.
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn validate_registry(host: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("registry `{host}` {why}"));
    let (hostname, port) = if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: `[::1]:5000`.
        let Some((addr, after)) = rest.split_once(']') else {
            return bad("has an unclosed `[`");
        };
        if addr.is_empty()
            || !addr
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return bad("is not a valid IPv6 address");
        }
        match after {
            "" => (addr, None),
            p if p.starts_with(':') => (addr, Some(&p[1..])),
            _ => return bad("has text after the IPv6 address"),
        }
    } else {
        match host.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        }
    };
    if !host.starts_with('[') {
        if hostname.is_empty() {
            return bad("has no host name");
        }
        for label in hostname.split('.') {
            let ok = !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return bad("is not a valid host name");
            }
        }
    }
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.chars().all(|c| c.is_ascii_digit()) {
            return bad(&format!("has an invalid port `{port}`"));
        }
        if port.parse::<u32>().map_or(true, |p| p == 0 || p > 65535) {
            return bad(&format!("has an out-of-range port `{port}`"));
        }
    }
    Ok(())
}

/// Path components: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, separated by `/`.
fn validate_path(path: &str) -> Result<(), String> {
    for component in path.split('/') {
        if component.is_empty() {
            return Err(format!("repository `{path}` has an empty path component"));
        }
        if component.contains(':') {
            return Err(format!(
                "repository `{path}` contains `:`; only the registry may have a `:port` and only one `:tag` may follow the name"
            ));
        }
        if let Some(c) = component.chars().find(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "repository `{path}` must be lower-case (found `{c}`); registries reject upper-case names"
            ));
        }
        if !valid_component(component) {
            return Err(format!(
                "repository component `{component}` may only contain a-z, 0-9 and single `.`, `_`, `__` or `-` separators between them"
            ));
        }
    }
    Ok(())
}

fn valid_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or one or more `-`.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Tags: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn validate_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("the tag after `:` is empty".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!(
            "tag `{tag}` is longer than {MAX_TAG_LEN} characters"
        ));
    }
    let first_ok = tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = tag
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok {
        return Err(format!(
            "tag `{tag}` may only contain A-Z, a-z, 0-9, `_`, `.` and `-`, and must not start with `.` or `-`"
        ));
    }
    Ok(())
}

/// Digests: `algorithm:encoded`; sha256 needs 64 lower-case hex digits.
fn validate_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Err(format!(
            "digest `{digest}` must look like `sha256:<64 hex digits>`"
        ));
    };
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.starts_with(|c: char| c.is_ascii_lowercase())
        && algorithm
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c));
    if !algorithm_ok {
        return Err(format!(
            "digest `{digest}` has an invalid algorithm `{algorithm}`"
        ));
    }
    let hex = |n: usize| {
        encoded.len() == n
            && encoded
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    };
    let ok = match algorithm {
        "sha256" => hex(64),
        "sha512" => hex(128),
        _ => {
            encoded.len() >= 32
                && encoded
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "=_-".contains(c))
        }
    };
    if !ok {
        return Err(format!(
            "digest `{digest}` has an invalid {algorithm} value"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r = ImageReference::parse(s).unwrap();
        (
            r.registry.clone(),
            r.repository.clone(),
            r.tag.clone(),
            r.digest.clone(),
        )
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(
            parts("python"),
            (
                "docker.io".into(),
                "library/python".into(),
                Some("latest".into()),
                None
            )
        );
        assert_eq!(parts("python:3.11-slim").2.as_deref(), Some("3.11-slim"));
        assert_eq!(parts("user/app:v1").1, "user/app");
        assert_eq!(parts("docker.io/python").1, "library/python");
        assert_eq!(parts("index.docker.io/user/app").0, "docker.io");
        let r = ImageReference::parse("python").unwrap();
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.to_string(), "docker.io/library/python:latest");
    }

    #[test]
    fn registries_with_ports_and_digests() {
        assert_eq!(
            parts("localhost:30000/union/debian-python:bookworm"),
            (
                "localhost:30000".into(),
                "union/debian-python".into(),
                Some("bookworm".into()),
                None
            )
        );
        assert_eq!(parts("localhost/app").0, "localhost");
        assert_eq!(
            parts("ghcr.io/flyteorg/flytekit:py3.11-1.16.0").1,
            "flyteorg/flytekit"
        );
        assert_eq!(parts("127.0.0.1:5000/a/b/c").1, "a/b/c");
        assert_eq!(parts("[::1]:5000/app:x").0, "[::1]:5000");
        let r = ImageReference::parse(&format!("localhost:5000/app@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.manifest_reference(), D);
        let r = ImageReference::parse(&format!("app:v1@{D}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (Some("v1"), Some(D)));
        assert_eq!(r.manifest_reference(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/app:v1@{D}"));
        // Upper case in the first component makes it a registry, as in Docker.
        assert_eq!(parts("MyRegistry/app").0, "MyRegistry");
        // A `:` in the name component with no `.` is a tag, not a port.
        assert_eq!(parts("app:5000").2.as_deref(), Some("5000"));
    }

    #[test]
    fn separators_in_components() {
        for ok in ["a.b", "a_b", "a__b", "a-b", "a---b", "a0", "0a"] {
            ImageReference::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["a..b", "a___b", "-a", "a-", "_a", "a._b"] {
            assert!(ImageReference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_references_name_the_problem() {
        let cases = [
            ("", "empty"),
            ("python:", "tag after `:` is empty"),
            ("Python", "lower-case"),
            ("localhost:30000/App:v1", "lower-case"),
            ("localhost:30000//app", "empty path component"),
            ("localhost:30000/", "empty path component"),
            ("localhost:abc/app", "invalid port"),
            ("localhost:70000/app", "out-of-range port"),
            ("my_host.io/app", "not a valid host name"),
            ("app:v1:v2", "contains `:`"),
            ("app:.hidden", "must not start with"),
            ("app@sha256:abc", "invalid sha256 value"),
            ("app@nodigest", "must look like"),
            ("https://ghcr.io/app", "URL scheme"),
            ("app name", "character"),
        ];
        for (input, needle) in cases {
            let err = ImageReference::parse(input).expect_err(input).to_string();
            assert!(err.contains(needle), "{input:?}: {err}");
            assert!(err.starts_with("invalid image reference `"), "{err}");
        }
        let long = format!("app:{}", "t".repeat(129));
        assert!(ImageReference::parse(&long)
            .unwrap_err()
            .reason
            .contains("longer than 128"));
    }
}
