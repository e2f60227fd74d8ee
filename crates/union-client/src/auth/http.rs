//! The HTTP client for the OAuth2 endpoints: TLS checked as configured for gRPC, and
//! `admin.httpProxyURL` applied (flytekit uses the proxy for these requests only).

use std::time::Duration;

use super::{AuthError, AuthSettings, TlsSettings};

pub(crate) fn client(
    settings: &AuthSettings,
    tls: &TlsSettings,
    url_for_errors: &str,
) -> Result<reqwest::Client, AuthError> {
    let err = |detail: String| AuthError::Http {
        url: url_for_errors.to_string(),
        detail,
    };
    let mut b = super::http_builder(tls)
        .map_err(err)?
        .timeout(Duration::from_secs(60))
        // flytekit posts with allow_redirects=False: a redirect is not a token.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(p) = &settings.http_proxy_url {
        let proxy = reqwest::Proxy::all(p.as_str())
            .map_err(|e| err(format!("admin.httpProxyURL is not a URL: {e}")))?;
        b = b.proxy(proxy);
    }
    b.build().map_err(|e| err(e.to_string()))
}

/// The error chain of a reqwest error, without the URL's query (which may hold a code).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut parts = vec![e.without_url_ref().to_string()];
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.contains(&t) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut s = self.to_string();
        if let Some(url) = self.url() {
            s = s.replace(url.as_str(), "");
        }
        s.trim().trim_end_matches(" ()").to_string()
    }
}
