//! `admin.authType`, read as flytekit 1.16 reads it (`clients/auth_helper.py`,
//! `get_authenticator`): the value upper-cased is an `AuthType` member name, so `Pkce`, `pkce`
//! and `standard` are one flow. The default is `standard` (PKCE), so a cluster with
//! authentication works with only `admin.endpoint` set.

/// The flows flytekit has built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthType {
    /// Authorization code with PKCE in a browser (`standard`, `Pkce`).
    #[default]
    Pkce,
    /// Client credentials (`ClientSecret`, `client_credentials`, `basic`).
    ClientSecret,
    /// A command prints the token (`ExternalCommand`, `external_process`).
    ExternalCommand,
    /// The device authorization grant (`DeviceFlow`).
    DeviceFlow,
}

/// A value that names none of them (flytekit then looks for a plugin; we have none).
#[derive(Debug, thiserror::Error)]
#[error("unknown authentication type `{0}` (admin.authType)")]
pub struct UnknownAuthType(pub String);

impl union_diagnostics::Hint for UnknownAuthType {
    fn hints(&self) -> Vec<String> {
        vec!["use one of: Pkce (standard), ClientSecret, ExternalCommand, DeviceFlow".into()]
    }
}

impl std::str::FromStr for AuthType {
    type Err = UnknownAuthType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // flytekit's AuthType member names; the lookup is by name, after `.upper()`.
        match s.to_uppercase().as_str() {
            "STANDARD" | "PKCE" => Ok(AuthType::Pkce),
            "BASIC" | "CLIENT_CREDENTIALS" | "CLIENTSECRET" => Ok(AuthType::ClientSecret),
            "EXTERNAL_PROCESS" | "EXTERNALCOMMAND" => Ok(AuthType::ExternalCommand),
            "DEVICEFLOW" => Ok(AuthType::DeviceFlow),
            _ => Err(UnknownAuthType(s.to_string())),
        }
    }
}

impl AuthType {
    /// The flow in effect: a client secret from `clientSecretLocation` or `clientSecretEnvVar`
    /// forces ClientSecret whatever `authType` says, as flytekit's `PlatformConfig.auto` does.
    pub fn effective(configured: Option<AuthType>, has_client_secret: bool) -> AuthType {
        if has_client_secret {
            AuthType::ClientSecret
        } else {
            configured.unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_flytekit_reads_them() {
        for (v, want) in [
            ("standard", AuthType::Pkce),
            ("Pkce", AuthType::Pkce),
            ("PKCE", AuthType::Pkce),
            ("basic", AuthType::ClientSecret),
            ("client_credentials", AuthType::ClientSecret),
            ("ClientSecret", AuthType::ClientSecret),
            ("clientsecret", AuthType::ClientSecret),
            ("external_process", AuthType::ExternalCommand),
            ("ExternalCommand", AuthType::ExternalCommand),
            ("DeviceFlow", AuthType::DeviceFlow),
        ] {
            assert_eq!(v.parse::<AuthType>().unwrap(), want, "{v}");
        }
        // Not a member name (the enum's *value* "Pkce" is, by name, PKCE; "device_flow" is not).
        assert!("device_flow".parse::<AuthType>().is_err());
        assert!("oauth".parse::<AuthType>().is_err());
    }

    #[test]
    fn a_client_secret_forces_client_secret() {
        assert_eq!(AuthType::effective(None, false), AuthType::Pkce);
        assert_eq!(
            AuthType::effective(Some(AuthType::DeviceFlow), true),
            AuthType::ClientSecret
        );
    }
}
