//! How the server wants to be authenticated: AuthMetadataService's `GetPublicClientConfig` and
//! `GetOAuth2Metadata`, called without a token (flytekit's `RemoteClientConfigStore`).

use tonic::transport::Channel;

use super::AuthError;
use union_idl::flyteidl::service::auth_metadata_service_client::AuthMetadataServiceClient;
use union_idl::flyteidl::service::{OAuth2MetadataRequest, PublicClientAuthConfigRequest};

/// flytekit's `ClientConfig`.
#[derive(Debug, Clone)]
pub(crate) struct ClientConfig {
    pub token_endpoint: String,
    pub authorization_endpoint: String,
    pub device_authorization_endpoint: String,
    pub redirect_uri: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// The metadata key the token goes in (`authorization` when the server names none).
    pub header_key: String,
    pub audience: String,
}

pub(crate) async fn discover(
    channel: Channel,
    endpoint: &str,
    proxy_authorization: Option<&str>,
) -> Result<ClientConfig, AuthError> {
    let mut client = AuthMetadataServiceClient::new(channel);
    fn with_proxy<T>(msg: T, proxy: Option<&str>) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Some(v) = proxy.and_then(|v| v.parse().ok()) {
            r.metadata_mut().insert("proxy-authorization", v);
        }
        r
    }
    let err = |rpc: &'static str, s: tonic::Status| AuthError::Discovery {
        endpoint: endpoint.to_string(),
        rpc,
        detail: format!("{:?}: {}", s.code(), s.message()),
    };
    let public = client
        .get_public_client_config(with_proxy(
            PublicClientAuthConfigRequest {},
            proxy_authorization,
        ))
        .await
        .map_err(|s| err("GetPublicClientConfig", s))?
        .into_inner();
    let oauth = client
        .get_o_auth2_metadata(with_proxy(OAuth2MetadataRequest {}, proxy_authorization))
        .await
        .map_err(|s| err("GetOAuth2Metadata", s))?
        .into_inner();
    Ok(ClientConfig {
        token_endpoint: oauth.token_endpoint,
        authorization_endpoint: oauth.authorization_endpoint,
        device_authorization_endpoint: oauth.device_authorization_endpoint,
        redirect_uri: public.redirect_uri,
        client_id: public.client_id,
        scopes: public.scopes,
        header_key: if public.authorization_metadata_key.is_empty() {
            "authorization".into()
        } else {
            public.authorization_metadata_key.to_ascii_lowercase()
        },
        audience: public.audience,
    })
}
