//! The sandbox's tokens: JWTs signed with HMAC-SHA256 (`HS256`) under the key in
//! `<data dir>/auth/signing.key`, plus the small primitives the OAuth2 endpoints share (PKCE,
//! constant-time comparison, random values).
//!
//! Self-contained tokens rather than a table of issued ones: the sandbox checks a token without
//! touching the database, and tokens stay valid across restarts because the key does.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

type HmacSha256 = Hmac<Sha256>;

/// The JOSE header of every token: HS256 only, so no algorithm can be chosen by a caller.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// What a token is good for: an access token for calls, a refresh token for the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Sent with each gRPC call.
    Access,
    /// Exchanged at the token endpoint for a new access token.
    Refresh,
}

impl std::fmt::Display for TokenKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenKind::Access => "an access token",
            TokenKind::Refresh => "a refresh token",
        })
    }
}

/// The claims of a sandbox token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the sandbox's base URL.
    pub iss: String,
    /// Audience: the sandbox's base URL too (it is its own resource server).
    pub aud: String,
    /// Subject: `union-sandbox` for the confidential client, `sandbox-user` for a person.
    pub sub: String,
    /// The OAuth2 client the token was issued to.
    pub client_id: String,
    /// Granted scopes.
    pub scp: Vec<String>,
    /// Issued at (unix seconds).
    pub iat: u64,
    /// Expires at (unix seconds); the token is refused from this second on.
    pub exp: u64,
    /// Random id, so that two tokens issued in the same second differ.
    pub jti: String,
    /// Access or refresh.
    pub typ: TokenKind,
    /// The organization, when the sandbox runs in org mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

/// Why a token is refused. Messages never quote the token: they end up in gRPC statuses and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts, or parts that do not decode.
    #[error("the token is malformed ({0})")]
    Malformed(&'static str),
    /// The signature is not this sandbox's.
    #[error("the token's signature does not match: it was not issued by this sandbox, or the sandbox's signing key has changed since")]
    BadSignature,
    /// Past its `exp`.
    #[error("the token has expired ({} ago)", elapsed(*.now, *.expired_at))]
    Expired { expired_at: u64, now: u64 },
    /// A refresh token where an access token belongs, or the reverse.
    #[error("this is {found}, not {expected}")]
    WrongKind {
        expected: TokenKind,
        found: TokenKind,
    },
    /// Signed with this key but for another address of the sandbox.
    #[error("the token was issued by `{found}`, not by this sandbox (`{expected}`)")]
    WrongIssuer { expected: String, found: String },
    /// The claims could not be encoded (never expected: they are strings and integers).
    #[error("cannot encode the token's claims")]
    Encode,
}

impl union_diagnostics::Hint for TokenError {
    fn hints(&self) -> Vec<String> {
        match self {
            TokenError::Encode => Vec::new(),
            _ => vec![
                "get a new token from the sandbox's token endpoint (flytekit and union do so by themselves when a call is refused as UNAUTHENTICATED)".into(),
            ],
        }
    }
}

fn elapsed(now: u64, at: u64) -> String {
    let s = now.saturating_sub(at);
    if s < 120 {
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s / 60)
    } else {
        format!("{} h", s / 3600)
    }
}

/// Signs and checks tokens with the sandbox's HMAC key.
#[derive(Clone)]
pub struct Signer {
    mac: HmacSha256,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer keyed with `key` (HMAC accepts any length; the sandbox uses 32 random bytes).
    pub fn new(key: &[u8]) -> Signer {
        // new_from_slice only fails for fixed-size-key MACs; HMAC takes any length.
        let mac = HmacSha256::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        Signer { mac }
    }

    /// The compact JWS of `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Encode)?;
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = self.mac.clone();
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Ok(format!("{signing_input}.{sig}"))
    }

    /// The claims of `token` if this key signed it, it is of `kind`, `issuer` issued it and it
    /// has not expired at `now` (unix seconds).
    pub fn verify(
        &self,
        token: &str,
        kind: TokenKind,
        issuer: &str,
        now: u64,
    ) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("not three dot-separated parts"));
        };
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Malformed("the signature is not base64url"))?;
        let mut mac = self.mac.clone();
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        // verify_slice compares in constant time.
        mac.verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        // Only after the signature: what follows was written by this sandbox.
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| TokenError::Malformed("the header is not base64url"))?;
        let header: serde_json::Value = serde_json::from_slice(&header)
            .map_err(|_| TokenError::Malformed("the header is not JSON"))?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(TokenError::Malformed("the algorithm is not HS256"));
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed("the claims are not base64url"))?;
        let claims: Claims = serde_json::from_slice(&payload)
            .map_err(|_| TokenError::Malformed("the claims are not the sandbox's"))?;
        if claims.typ != kind {
            return Err(TokenError::WrongKind {
                expected: kind,
                found: claims.typ,
            });
        }
        if claims.iss != issuer {
            return Err(TokenError::WrongIssuer {
                expected: issuer.to_string(),
                found: claims.iss,
            });
        }
        if now >= claims.exp {
            return Err(TokenError::Expired {
                expired_at: claims.exp,
                now,
            });
        }
        Ok(claims)
    }
}

/// `a == b` in time independent of where they differ (their lengths may leak).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The S256 code challenge of a PKCE verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` is a well-formed PKCE verifier (RFC 7636 §4.1: 43 to 128 characters of
/// `[A-Za-z0-9-._~]`).
pub fn pkce_verifier_is_valid(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Whether `verifier` hashes to `challenge` (S256).
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    constant_time_eq(pkce_challenge(verifier).as_bytes(), challenge.as_bytes())
}

/// `n` random bytes from the OS as base64url without padding: codes, secrets, token ids.
pub fn random_token(n: usize) -> Result<String, getrandom::Error> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Eight letters without vowels (no accidental words), for people to compare and type.
pub fn random_user_code() -> Result<String, getrandom::Error> {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXYZ";
    let mut out = String::with_capacity(8);
    while out.len() < 8 {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        // Rejection sampling: 252 = 12 * 21, so every letter is equally likely.
        for b in bytes.into_iter().filter(|b| *b < 252) {
            if out.len() < 8 {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "http://127.0.0.1:30080";

    fn claims(typ: TokenKind, exp: u64) -> Claims {
        Claims {
            iss: ISS.into(),
            aud: ISS.into(),
            sub: "sandbox-user".into(),
            client_id: "flytectl".into(),
            scp: vec!["all".into(), "offline".into()],
            iat: 1000,
            exp,
            jti: "abc".into(),
            typ,
            org: Some("acme".into()),
        }
    }

    #[test]
    fn a_signed_token_verifies_to_its_claims() {
        let signer = Signer::new(&[7u8; 32]);
        let c = claims(TokenKind::Access, 2000);
        let token = signer.sign(&c).unwrap();
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(
            signer.verify(&token, TokenKind::Access, ISS, 1999).unwrap(),
            c
        );
        // A standard JWT: the header names HS256.
        let header = URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap();
        assert_eq!(header, HEADER.as_bytes());
    }

    #[test]
    fn the_org_claim_is_left_out_without_org_mode() {
        let signer = Signer::new(&[7u8; 32]);
        let mut c = claims(TokenKind::Access, 2000);
        c.org = None;
        let token = signer.sign(&c).unwrap();
        let payload = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert!(v.get("org").is_none());
        assert_eq!(v["typ"], "access");
        assert_eq!(
            signer.verify(&token, TokenKind::Access, ISS, 1500).unwrap(),
            c
        );
    }

    #[test]
    fn another_key_or_a_changed_payload_is_a_bad_signature() {
        let token = Signer::new(&[7u8; 32])
            .sign(&claims(TokenKind::Access, 2000))
            .unwrap();
        let other = Signer::new(&[8u8; 32]);
        assert_eq!(
            other.verify(&token, TokenKind::Access, ISS, 1500),
            Err(TokenError::BadSignature)
        );
        // Re-encode the claims with a later expiry, keep the signature.
        let signer = Signer::new(&[7u8; 32]);
        let forged_claims = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims(TokenKind::Access, 9_999_999)).unwrap());
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = &forged_claims;
        assert_eq!(
            signer.verify(&parts.join("."), TokenKind::Access, ISS, 1500),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn expiry_is_strict() {
        let signer = Signer::new(&[7u8; 32]);
        let token = signer.sign(&claims(TokenKind::Access, 2000)).unwrap();
        let err = signer
            .verify(&token, TokenKind::Access, ISS, 2000)
            .unwrap_err();
        assert_eq!(
            err,
            TokenError::Expired {
                expired_at: 2000,
                now: 2000
            }
        );
        assert_eq!(err.to_string(), "the token has expired (0 s ago)");
    }

    #[test]
    fn an_access_token_is_no_refresh_token_and_the_reverse() {
        let signer = Signer::new(&[7u8; 32]);
        let access = signer.sign(&claims(TokenKind::Access, 2000)).unwrap();
        let refresh = signer.sign(&claims(TokenKind::Refresh, 2000)).unwrap();
        assert_eq!(
            signer.verify(&access, TokenKind::Refresh, ISS, 1500),
            Err(TokenError::WrongKind {
                expected: TokenKind::Refresh,
                found: TokenKind::Access
            })
        );
        let err = signer
            .verify(&refresh, TokenKind::Access, ISS, 1500)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "this is a refresh token, not an access token"
        );
    }

    #[test]
    fn another_issuer_and_garbage_are_refused_without_quoting_the_token() {
        let signer = Signer::new(&[7u8; 32]);
        let token = signer.sign(&claims(TokenKind::Access, 2000)).unwrap();
        assert!(matches!(
            signer.verify(&token, TokenKind::Access, "http://127.0.0.1:1", 1500),
            Err(TokenError::WrongIssuer { .. })
        ));
        for garbage in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "a.b.!!!",
            "secret-looking-token",
        ] {
            let err = signer
                .verify(garbage, TokenKind::Access, ISS, 1500)
                .unwrap_err();
            assert!(
                matches!(err, TokenError::Malformed(_) | TokenError::BadSignature),
                "{garbage}: {err:?}"
            );
            if !garbage.is_empty() {
                assert!(!err.to_string().contains(garbage), "{err}");
            }
        }
    }

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(pkce_challenge(verifier), challenge);
        assert!(pkce_matches(verifier, challenge));
        assert!(pkce_verifier_is_valid(verifier));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            challenge
        ));
        assert!(!pkce_verifier_is_valid("short"));
        assert!(!pkce_verifier_is_valid(&"a+".repeat(30)));
    }

    #[test]
    fn random_values_have_their_shapes() {
        let t = random_token(32).unwrap();
        assert_eq!(t.len(), 43);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(t, random_token(32).unwrap());
        let code = random_user_code().unwrap();
        assert_eq!(code.len(), 8);
        assert!(code
            .bytes()
            .all(|b| b.is_ascii_uppercase() && !b"AEIOU".contains(&b)));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
