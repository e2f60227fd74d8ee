//! Secrets out of everything `union` prints: credentials written into URLs
//! (`https://user:token@pypi.example.com/simple`, as `pip_index` and `pip_extra_index_url` allow)
//! are masked the way pip masks them (`https://user:****@pypi.example.com/simple`; a user name
//! alone, often a token, is masked whole). Every sink that prints (progress lines, errors, data
//! on stdout) passes its text through [`mask_url_credentials`].

use std::borrow::Cow;
use std::sync::OnceLock;

/// The mask that replaces a secret.
pub const MASK: &str = "****";

fn pattern() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // scheme://userinfo@ where userinfo has no '/', '@' or whitespace; the password part is
        // optional. Anchored on "://" so that `git@host:org/repo` and e-mail addresses stay.
        regex::Regex::new(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@:\s]*)(?::(?P<password>[^/@\s]*))?@")
            .expect("valid regex")
    })
}

/// `text` with every URL's credentials masked. Borrowed when there is nothing to mask.
pub fn mask_url_credentials(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    pattern().replace_all(text, |c: &regex::Captures<'_>| {
        let scheme = &c["scheme"];
        match c.name("password") {
            Some(_) if !c["user"].is_empty() => format!("{scheme}{}:{MASK}@", &c["user"]),
            _ => format!("{scheme}{MASK}@"),
        }
    })
}

/// The user name and password written into `url`, percent-decoded, if it has any.
pub fn url_credentials(url: &str) -> Option<(String, String)> {
    let c = pattern().captures(url)?;
    // Only credentials of the URL itself, not of one mentioned later in the string.
    if c.get(0)?.start() != 0 {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((
        decode(&c["user"]),
        c.name("password")
            .map(|p| decode(p.as_str()))
            .unwrap_or_default(),
    ))
}

/// `url` without the credentials written into it.
pub fn strip_url_credentials(url: &str) -> String {
    match pattern().captures(url) {
        Some(c) if c.get(0).is_some_and(|m| m.start() == 0) => {
            format!(
                "{}{}",
                &c["scheme"],
                &url[c.get(0).map_or(0, |m| m.end())..]
            )
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_and_lone_tokens() {
        assert_eq!(
            mask_url_credentials("--index-url https://alice:s3cr%40t@pypi.example.com/simple"),
            "--index-url https://alice:****@pypi.example.com/simple"
        );
        assert_eq!(
            mask_url_credentials("see https://ghp_abc123@github.com/org/repo.git and more"),
            "see https://****@github.com/org/repo.git and more"
        );
        assert_eq!(
            mask_url_credentials("a http://u:p@h/x b https://v:q@k/y"),
            "a http://u:****@h/x b https://v:****@k/y"
        );
    }

    #[test]
    fn leaves_text_without_credentials_alone() {
        for s in [
            "https://pypi.org/simple",
            "git@github.com:org/repo.git",
            "mail alice@example.com",
            "localhost:30000/img:tag",
        ] {
            assert!(matches!(mask_url_credentials(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn splits_credentials_from_the_url() {
        let url = "https://alice:s3cr%40t@pypi.example.com/simple";
        assert_eq!(
            url_credentials(url),
            Some(("alice".into(), "s3cr@t".into()))
        );
        assert_eq!(
            strip_url_credentials(url),
            "https://pypi.example.com/simple"
        );
        assert_eq!(url_credentials("https://pypi.org/simple"), None);
        assert_eq!(
            strip_url_credentials("https://pypi.org/simple"),
            "https://pypi.org/simple"
        );
    }
}
