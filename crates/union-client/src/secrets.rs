//! union's `cloudidl.secret.SecretService`, as `union create|get|delete secret` call it: the org
//! of the client goes into every identifier (what union's interceptor does), and failures are
//! [`AdminError`]s naming the secret, never its value.

use crate::admin::{AdminClient, AdminError};
use union_idl::cloudidl::secret::secret_service_client::SecretServiceClient;
use union_idl::cloudidl::secret::{
    CreateSecretRequest, DeleteSecretRequest, GetSecretRequest, ListSecretsRequest, Secret,
    SecretIdentifier, SecretSpec,
};

/// Page size of ListSecrets (union's CLI asks for 20).
const PAGE: i32 = 20;

impl AdminClient {
    fn secret_stub(&self) -> SecretServiceClient<crate::auth::AuthChannel> {
        SecretServiceClient::new(self.channel())
    }

    /// A secret identifier in this client's org; empty project/domain: all of them.
    pub fn secret_id(&self, name: &str, project: &str, domain: &str) -> SecretIdentifier {
        SecretIdentifier {
            name: name.into(),
            organization: self.org().unwrap_or_default().into(),
            domain: domain.into(),
            project: project.into(),
        }
    }

    /// CreateSecret.
    pub async fn create_secret(
        &self,
        id: SecretIdentifier,
        spec: SecretSpec,
    ) -> Result<(), AdminError> {
        let what = format!("secret {}", id.name);
        self.secret_stub()
            .create_secret(CreateSecretRequest {
                id: Some(id),
                secret_spec: Some(spec),
            })
            .await
            .map(|_| ())
            .map_err(|s| self.status_error("CreateSecret", what, s))
    }

    /// GetSecret: its scope, type and creation time (never its value).
    pub async fn get_secret(&self, id: SecretIdentifier) -> Result<Secret, AdminError> {
        let what = format!("secret {}", id.name);
        self.secret_stub()
            .get_secret(GetSecretRequest { id: Some(id) })
            .await
            .map_err(|s| self.status_error("GetSecret", what.clone(), s))?
            .into_inner()
            .secret
            .ok_or_else(|| AdminError::Rpc {
                rpc: "GetSecret",
                what,
                code: tonic::Code::Internal,
                message: "the server answered no secret".into(),
            })
    }

    /// DeleteSecret.
    pub async fn delete_secret(&self, id: SecretIdentifier) -> Result<(), AdminError> {
        let what = format!("secret {}", id.name);
        self.secret_stub()
            .delete_secret(DeleteSecretRequest { id: Some(id) })
            .await
            .map(|_| ())
            .map_err(|s| self.status_error("DeleteSecret", what, s))
    }

    /// Every secret of the org matching the project/domain filters (empty: any), page by page
    /// as union's CLI pages: until no cluster has a next token.
    pub async fn list_secrets(
        &self,
        project: &str,
        domain: &str,
    ) -> Result<Vec<Secret>, AdminError> {
        let mut stub = self.secret_stub();
        let mut out = Vec::new();
        let mut tokens = std::collections::BTreeMap::new();
        loop {
            let request = ListSecretsRequest {
                organization: self.org().unwrap_or_default().into(),
                domain: domain.into(),
                project: project.into(),
                limit: PAGE,
                token: String::new(),
                per_cluster_tokens: tokens,
            };
            let page = stub
                .list_secrets(request)
                .await
                .map_err(|s| self.status_error("ListSecrets", "secrets".into(), s))?
                .into_inner();
            out.extend(page.secrets);
            tokens = page.per_cluster_tokens;
            if !tokens.values().any(|t| !t.is_empty()) {
                return Ok(out);
            }
        }
    }
}
