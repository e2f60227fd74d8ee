//! union's API keys (`UNION_API_KEY` and its aliases): `base64("endpoint:client_id:secret:org")`,
//! decoded as union 0.1.204 decodes them (`union/_config.py`, `_decode_app_client_credentials`).
//! A key turns the configuration into ClientSecret authentication over TLS.

use base64::Engine as _;

/// The variables union reads a key from, in its order.
pub const API_KEY_VARS: [&str; 5] = [
    "UNION_API_KEY",
    "UNION_SERVERLESS_API_KEY",
    "UNIONAI_SERVERLESS_API_KEY",
    "_UNION_EAGER_API_KEY",
    "_UNION_UNION_API_KEY",
];

/// Overrides which endpoints count as Serverless (union's `UNION_SERVERLESS_ENDPOINT`).
pub const SERVERLESS_ENDPOINT_VAR: &str = "UNION_SERVERLESS_ENDPOINT";

/// union's Serverless endpoints: only their keys carry an org (BYOC keys' org is dropped).
const SERVERLESS_ENDPOINTS: [&str; 5] = [
    "serverless-1.us-east-2.s.union.ai",
    "serverless-gcp.cloud-staging.union.ai",
    "utt-srv-staging-1.cloud-staging.union.ai",
    "serverless-preview.canary.unionai.cloud",
    "utt-srv-canary-1.canary.unionai.cloud",
];

/// Whether union treats `endpoint` as Serverless (its org then comes from the key or from
/// `IdentityService.UserInfo`): one of union's Serverless endpoints, or any endpoint while
/// `UNION_SERVERLESS_ENDPOINT` is set.
pub fn is_serverless(endpoint: &str, env: &dyn Fn(&str) -> Option<String>) -> bool {
    SERVERLESS_ENDPOINTS.contains(&endpoint) || env(SERVERLESS_ENDPOINT_VAR).is_some()
}

/// What a key holds. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    /// Set only for Serverless endpoints, and never the literal `None`.
    pub org: Option<String>,
    /// The variable it came from.
    pub from: &'static str,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("org", &self.org)
            .field("from", &self.from)
            .finish()
    }
}

/// Why a key cannot be used. Never quotes the key.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("${var} is not base64: create a new key with `union create api-key app`")]
    NotBase64 { var: &'static str },
    #[error("${var} does not hold endpoint:client_id:secret:org (it has {parts} part(s))")]
    Parts { var: &'static str, parts: usize },
}

impl union_diagnostics::Hint for ApiKeyError {
    fn hints(&self) -> Vec<String> {
        vec![format!(
            "unset {} or set it to the key `union create api-key app` printed",
            match self {
                ApiKeyError::NotBase64 { var } | ApiKeyError::Parts { var, .. } => var,
            }
        )]
    }
}

/// The first key set in the environment (`env` looks a variable up), decoded.
pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<ApiKey>, ApiKeyError> {
    for var in API_KEY_VARS {
        // union tests presence (`in os.environ`), so an empty value is still the key it reads.
        if let Some(value) = env(var) {
            let serverless_override = env(SERVERLESS_ENDPOINT_VAR).is_some_and(|v| !v.is_empty());
            return decode(&value, var, serverless_override).map(Some);
        }
    }
    Ok(None)
}

/// Decode a key read from `var`. `serverless_override`: `UNION_SERVERLESS_ENDPOINT` is set, which
/// makes union treat every endpoint as Serverless.
pub fn decode(
    value: &str,
    var: &'static str,
    serverless_override: bool,
) -> Result<ApiKey, ApiKeyError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim_end_matches(['\n', '\r']))
        .map_err(|_| ApiKeyError::NotBase64 { var })?;
    let text = String::from_utf8(bytes).map_err(|_| ApiKeyError::NotBase64 { var })?;
    let parts: Vec<&str> = text.split(':').collect();
    let [endpoint, client_id, client_secret, org] = parts[..] else {
        return Err(ApiKeyError::Parts {
            var,
            parts: parts.len(),
        });
    };
    let serverless = SERVERLESS_ENDPOINTS.contains(&endpoint) || serverless_override;
    let org = (org != "None" && serverless).then(|| org.to_string());
    Ok(ApiKey {
        endpoint: endpoint.to_string(),
        client_id: client_id.to_string(),
        client_secret: client_secret.to_string(),
        org,
        from: var,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Encoded by union 0.1.204's `_encode_app_client_credentials`; decoded there as noted.
    #[test]
    fn decodes_as_union_does() {
        let k = decode(
            "c2VydmVybGVzcy0xLnVzLWVhc3QtMi5zLnVuaW9uLmFpOmNpZDpzM2NyPXQrL3g6YWNtZQ==",
            "UNION_API_KEY",
            false,
        )
        .unwrap();
        assert_eq!(k.endpoint, "serverless-1.us-east-2.s.union.ai");
        assert_eq!(k.client_id, "cid");
        assert_eq!(k.client_secret, "s3cr=t+/x");
        assert_eq!(k.org.as_deref(), Some("acme"));
        // BYOC: union drops the org, "None" or not.
        for key in [
            "dGVuYW50LmV4YW1wbGUuY29tOmFwcDpzZWM6Tm9uZQ==",
            "dGVuYW50LmV4YW1wbGUuY29tOmFwcDpzZWM6bXlvcmc=",
        ] {
            let k = decode(key, "UNION_API_KEY", false).unwrap();
            assert_eq!((k.endpoint.as_str(), k.org), ("tenant.example.com", None));
        }
        // ... unless UNION_SERVERLESS_ENDPOINT makes every endpoint Serverless.
        let k = decode(
            "dGVuYW50LmV4YW1wbGUuY29tOmFwcDpzZWM6bXlvcmc=",
            "UNION_API_KEY",
            true,
        )
        .unwrap();
        assert_eq!(k.org.as_deref(), Some("myorg"));
    }

    #[test]
    fn bad_keys_are_named_never_quoted() {
        let e = decode("bm90LWVub3VnaA==", "UNION_API_KEY", false).unwrap_err();
        assert!(matches!(e, ApiKeyError::Parts { parts: 1, .. }), "{e}");
        let e = decode("%%%secret%%%", "UNION_API_KEY", false).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        let k = decode(
            "c2VydmVybGVzcy0xLnVzLWVhc3QtMi5zLnVuaW9uLmFpOmNpZDpzM2NyPXQrL3g6YWNtZQ==",
            "UNION_API_KEY",
            false,
        )
        .unwrap();
        assert!(!format!("{k:?}").contains("s3cr"));
    }

    #[test]
    fn the_first_variable_set_wins() {
        let env = |v: &str| match v {
            "UNIONAI_SERVERLESS_API_KEY" => {
                Some("dGVuYW50LmV4YW1wbGUuY29tOmFwcDpzZWM6Tm9uZQ==".to_string())
            }
            "_UNION_UNION_API_KEY" => Some("garbage".to_string()),
            _ => None,
        };
        let k = from_env(&env).unwrap().unwrap();
        assert_eq!(k.from, "UNIONAI_SERVERLESS_API_KEY");
        assert_eq!(from_env(&|_: &str| None).unwrap(), None);
    }
}
