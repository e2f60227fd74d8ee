//! What clients ask before they have a token (`AuthMetadataService`), and who they are once they
//! have one (`IdentityService.UserInfo`).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{Authority, Claims, AUTHORIZATION_METADATA_KEY, PUBLIC_CLIENT_ID, SCOPES};
use union_idl::flyteidl::service::auth_metadata_service_server::AuthMetadataService;
use union_idl::flyteidl::service::identity_service_server::IdentityService;
use union_idl::flyteidl::service::{
    OAuth2MetadataRequest, OAuth2MetadataResponse, PublicClientAuthConfigRequest,
    PublicClientAuthConfigResponse, UserInfoRequest, UserInfoResponse,
};

/// Grant types the token endpoint takes.
pub const GRANT_TYPES: [&str; 4] = [
    "client_credentials",
    "authorization_code",
    "refresh_token",
    super::http::DEVICE_CODE_GRANT,
];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Authority {
    /// The authorization server's metadata (RFC 8414), as flyteadmin's `GetOAuth2Metadata` gives it.
    pub fn oauth2_metadata(&self) -> OAuth2MetadataResponse {
        OAuth2MetadataResponse {
            issuer: self.base_url().to_string(),
            authorization_endpoint: self.authorization_endpoint(),
            token_endpoint: self.token_endpoint(),
            response_types_supported: strings(&["code"]),
            scopes_supported: strings(&SCOPES),
            token_endpoint_auth_methods_supported: strings(&["client_secret_basic"]),
            // No JWKS: the tokens are HMAC-signed, only the sandbox can check them.
            jwks_uri: String::new(),
            code_challenge_methods_supported: strings(&["S256"]),
            grant_types_supported: strings(&GRANT_TYPES),
            device_authorization_endpoint: self.device_authorization_endpoint(),
        }
    }

    /// The public client's configuration, as flyteadmin's `GetPublicClientConfig` gives it.
    pub fn public_client_config(&self) -> PublicClientAuthConfigResponse {
        PublicClientAuthConfigResponse {
            client_id: PUBLIC_CLIENT_ID.to_string(),
            redirect_uri: self.settings().redirect_uri.clone(),
            scopes: strings(&SCOPES),
            authorization_metadata_key: AUTHORIZATION_METADATA_KEY.to_string(),
            service_http_endpoint: self.base_url().to_string(),
            audience: String::new(),
        }
    }
}

/// `AuthMetadataService` of a sandbox with authentication on.
#[derive(Debug, Clone)]
pub struct Metadata {
    authority: Arc<Authority>,
}

impl Metadata {
    /// The metadata of `authority`.
    pub fn new(authority: Arc<Authority>) -> Self {
        Metadata { authority }
    }
}

#[tonic::async_trait]
impl AuthMetadataService for Metadata {
    async fn get_o_auth2_metadata(
        &self,
        _request: Request<OAuth2MetadataRequest>,
    ) -> Result<Response<OAuth2MetadataResponse>, Status> {
        Ok(Response::new(self.authority.oauth2_metadata()))
    }

    async fn get_public_client_config(
        &self,
        _request: Request<PublicClientAuthConfigRequest>,
    ) -> Result<Response<PublicClientAuthConfigResponse>, Status> {
        Ok(Response::new(self.authority.public_client_config()))
    }
}

/// `IdentityService`: the caller the gate let through, or an anonymous user when authentication
/// is off (so that "who am I" calls work against a plain sandbox too).
#[derive(Debug, Clone)]
pub struct Identity {
    authority: Option<Arc<Authority>>,
}

impl Identity {
    /// The identity service of a sandbox with (`Some`) or without authentication.
    pub fn new(authority: Option<Arc<Authority>>) -> Self {
        Identity { authority }
    }
}

/// Subject of every caller when authentication is off.
pub const ANONYMOUS_SUBJECT: &str = "anonymous";

fn user_info(subject: &str, org: Option<&str>) -> UserInfoResponse {
    let additional_claims = org.map(|org| prost_types::Struct {
        fields: [(
            "userhandle".to_string(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue(org.to_string())),
            },
        )]
        .into_iter()
        .collect(),
    });
    UserInfoResponse {
        subject: subject.to_string(),
        name: subject.to_string(),
        preferred_username: subject.to_string(),
        additional_claims,
        ..Default::default()
    }
}

#[tonic::async_trait]
impl IdentityService for Identity {
    async fn user_info(
        &self,
        request: Request<UserInfoRequest>,
    ) -> Result<Response<UserInfoResponse>, Status> {
        if self.authority.is_none() {
            return Ok(Response::new(user_info(ANONYMOUS_SUBJECT, None)));
        }
        // The gate put the token's claims there; without them the gate did not run.
        let claims = request.extensions().get::<Claims>().ok_or_else(|| {
            Status::unauthenticated(
                "flyteidl.service.IdentityService/UserInfo needs an access token",
            )
        })?;
        Ok(Response::new(user_info(&claims.sub, claims.org.as_deref())))
    }
}
