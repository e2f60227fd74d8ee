//! Token requests to an OAuth2 token endpoint, shaped as flytekit's `token_client.get_token`
//! shapes them (issue 12, in progress: the request body and header so far).

use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What Python's `urllib.parse.quote_plus` leaves alone: letters, digits and `_.-~`.
const QUOTE_PLUS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// `urllib.parse.quote_plus(s)`: a space becomes `+`, the rest as above percent-encoded.
pub fn quote_plus(s: &str) -> String {
    s.split(' ')
        .map(|part| utf8_percent_encode(part, QUOTE_PLUS).to_string())
        .collect::<Vec<_>>()
        .join("+")
}

/// The `Authorization` header of a client-credentials request: Basic, with the secret
/// URL-encoded first, as flytekit's `get_basic_authorization_header` does (a secret with `:` or
/// `%` in it reaches the server intact).
pub fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let joined = format!("{client_id}:{}", quote_plus(client_secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(joined)
    )
}

/// The `scope` form value flytekit sends for a list of scopes (each stripped of quotes and
/// spaces, joined by a space; sent even when empty).
pub fn scope_value(scopes: &[String]) -> String {
    let joined = scopes
        .iter()
        .map(|s| s.trim_matches(|c| c == '\'' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ");
    joined
        .trim_matches(|c| c == '[' || c == ']' || c == '\'')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_equals_flytekits() {
        // flytekit 1.16.31: get_basic_authorization_header("my-app", "p@ss w/rd+=&")
        assert_eq!(
            basic_authorization("my-app", "p@ss w/rd+=&"),
            "Basic bXktYXBwOnAlNDBzcyt3JTJGcmQlMkIlM0QlMjY="
        );
    }

    #[test]
    fn scope_value_equals_flytekits() {
        assert_eq!(
            scope_value(&["all".into(), " offline ".into()]),
            "all offline"
        );
        assert_eq!(scope_value(&[]), "");
    }
}
