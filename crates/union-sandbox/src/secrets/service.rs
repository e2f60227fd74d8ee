//! `cloudidl.secret.SecretService` over the `secrets` table.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{NewSecret, SecretInfo, SecretKey};
use crate::executor::secrets::SecretValue;
use crate::status::{db, timestamp};
use crate::store::Store;
use union_idl::cloudidl::common::ClusterIdentifier;
use union_idl::cloudidl::secret::secret_service_server::{SecretService, SecretServiceServer};
use union_idl::cloudidl::secret::{
    secret_spec, ClusterSecretStatus, CreateSecretRequest, CreateSecretResponse,
    DeleteSecretRequest, DeleteSecretResponse, GetSecretRequest, GetSecretResponse,
    ListSecretsRequest, ListSecretsResponse, OverallStatus, Secret, SecretIdentifier,
    SecretMetadata, SecretPresenceStatus, SecretSpec, SecretStatus, SecretType,
    UpdateSecretRequest, UpdateSecretResponse,
};

/// The one "cluster" secrets are present in, as union reports per-cluster presence.
const CLUSTER: &str = "sandbox";
/// Page size when the request gives none.
const DEFAULT_LIMIT: u32 = 100;

/// The SecretService of the sandbox.
#[derive(Debug, Clone)]
pub struct SecretApi {
    store: Arc<Store>,
}

impl SecretApi {
    /// Secrets kept in `store`.
    pub fn new(store: Arc<Store>) -> Self {
        SecretApi { store }
    }

    /// As a tonic service.
    pub fn into_server(self) -> SecretServiceServer<Self> {
        SecretServiceServer::new(self)
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, Status> + Send + 'static,
    {
        crate::status::blocking(&self.store, f).await
    }
}

/// The org of a request: the identifier's, else union's `x-user-active-org` header.
fn org_of<T>(request: &Request<T>, given: &str) -> String {
    if !given.is_empty() {
        return given.to_string();
    }
    request
        .metadata()
        .get("x-user-active-org")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn key_of<T>(request: &Request<T>, id: Option<&SecretIdentifier>) -> Result<SecretKey, Status> {
    let id = id.ok_or_else(|| Status::invalid_argument("missing id"))?;
    check_name(&id.name)?;
    Ok(SecretKey {
        org: org_of(request, &id.organization),
        project: id.project.clone(),
        domain: id.domain.clone(),
        name: id.name.clone(),
    })
}

/// Names become environment variable and file names in task containers: letters, digits, `-`,
/// `_` and `.`, not starting with `.`.
fn check_name(name: &str) -> Result<(), Status> {
    if name.is_empty() {
        return Err(Status::invalid_argument("missing id.name"));
    }
    let ok = name.len() <= 253
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "invalid secret name `{name}`: use letters, digits, `-`, `_` and `.` (not first), at most 253 characters"
        )))
    }
}

fn new_secret(spec: Option<SecretSpec>) -> Result<NewSecret, Status> {
    let spec = spec.ok_or_else(|| Status::invalid_argument("missing secret_spec"))?;
    let (bytes, binary) = match spec.value {
        Some(secret_spec::Value::StringValue(s)) => (s.into_bytes(), false),
        Some(secret_spec::Value::BinaryValue(b)) => (b, true),
        None => {
            return Err(Status::invalid_argument(
                "missing secret_spec.value (string_value or binary_value)",
            ))
        }
    };
    if SecretType::try_from(spec.r#type).is_err() {
        return Err(Status::invalid_argument(format!(
            "unknown secret type {}",
            spec.r#type
        )));
    }
    Ok(NewSecret {
        value: SecretValue::new(bytes),
        binary,
        secret_type: spec.r#type,
    })
}

fn scope_text(k: &SecretKey) -> String {
    let or_all = |s: &str, all: &str| {
        if s.is_empty() {
            all.to_string()
        } else {
            format!("`{s}`")
        }
    };
    format!(
        "project {}, domain {}",
        or_all(&k.project, "(all)"),
        or_all(&k.domain, "(all)")
    )
}

fn not_found(k: &SecretKey) -> Status {
    Status::not_found(format!(
        "secret `{}` does not exist ({})",
        k.name,
        scope_text(k)
    ))
}

fn secret_message(info: &SecretInfo) -> Secret {
    Secret {
        id: Some(SecretIdentifier {
            name: info.key.name.clone(),
            organization: info.key.org.clone(),
            domain: info.key.domain.clone(),
            project: info.key.project.clone(),
        }),
        secret_metadata: Some(SecretMetadata {
            created_time: Some(timestamp(info.created_at)),
            secret_status: Some(SecretStatus {
                overall_status: OverallStatus::FullyPresent as i32,
                cluster_status: vec![ClusterSecretStatus {
                    cluster: Some(ClusterIdentifier {
                        organization: info.key.org.clone(),
                        name: CLUSTER.into(),
                    }),
                    presence_status: SecretPresenceStatus::Present as i32,
                }],
            }),
            r#type: info.secret_type,
        }),
    }
}

#[tonic::async_trait]
impl SecretService for SecretApi {
    async fn create_secret(
        &self,
        request: Request<CreateSecretRequest>,
    ) -> Result<Response<CreateSecretResponse>, Status> {
        let key = key_of(&request, request.get_ref().id.as_ref())?;
        let new = new_secret(request.into_inner().secret_spec)?;
        self.blocking(move |store| {
            if super::create(store, &key, &new).map_err(db)? {
                Ok(Response::new(CreateSecretResponse {}))
            } else {
                Err(Status::already_exists(format!(
                    "secret `{}` already exists ({})",
                    key.name,
                    scope_text(&key)
                )))
            }
        })
        .await
    }

    async fn update_secret(
        &self,
        request: Request<UpdateSecretRequest>,
    ) -> Result<Response<UpdateSecretResponse>, Status> {
        let key = key_of(&request, request.get_ref().id.as_ref())?;
        let new = new_secret(request.into_inner().secret_spec)?;
        self.blocking(move |store| {
            if super::update(store, &key, &new).map_err(db)? {
                Ok(Response::new(UpdateSecretResponse {}))
            } else {
                Err(not_found(&key))
            }
        })
        .await
    }

    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let key = key_of(&request, request.get_ref().id.as_ref())?;
        self.blocking(move |store| match super::get(store, &key).map_err(db)? {
            Some(info) => Ok(Response::new(GetSecretResponse {
                secret: Some(secret_message(&info)),
            })),
            None => Err(not_found(&key)),
        })
        .await
    }

    async fn delete_secret(
        &self,
        request: Request<DeleteSecretRequest>,
    ) -> Result<Response<DeleteSecretResponse>, Status> {
        let key = key_of(&request, request.get_ref().id.as_ref())?;
        self.blocking(move |store| {
            if super::delete(store, &key).map_err(db)? {
                Ok(Response::new(DeleteSecretResponse {}))
            } else {
                Err(not_found(&key))
            }
        })
        .await
    }

    async fn list_secrets(
        &self,
        request: Request<ListSecretsRequest>,
    ) -> Result<Response<ListSecretsResponse>, Status> {
        let org = org_of(&request, &request.get_ref().organization);
        let r = request.into_inner();
        // union's CLI pages with per-cluster tokens; other clients with `token`.
        let token = r
            .per_cluster_tokens
            .get(CLUSTER)
            .filter(|t| !t.is_empty())
            .unwrap_or(&r.token);
        let offset: u32 = if token.is_empty() {
            0
        } else {
            token
                .parse()
                .map_err(|_| Status::invalid_argument(format!("invalid token `{token}`")))?
        };
        let limit = u32::try_from(r.limit)
            .ok()
            .filter(|l| *l > 0)
            .unwrap_or(DEFAULT_LIMIT);
        let (project, domain) = (r.project, r.domain);
        let rows = self
            .blocking(move |store| {
                super::list(store, &org, &project, &domain, offset, limit + 1).map_err(db)
            })
            .await?;
        let more = rows.len() > limit as usize;
        let secrets: Vec<Secret> = rows
            .iter()
            .take(limit as usize)
            .map(secret_message)
            .collect();
        let next = if more {
            (offset + limit).to_string()
        } else {
            String::new()
        };
        let mut per_cluster_tokens = std::collections::BTreeMap::new();
        if more {
            per_cluster_tokens.insert(CLUSTER.to_string(), next.clone());
        }
        Ok(Response::new(ListSecretsResponse {
            secrets,
            token: next,
            per_cluster_tokens,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_org<T>(message: T, org: &str) -> Request<T> {
        let mut r = Request::new(message);
        if !org.is_empty() {
            r.metadata_mut()
                .insert("x-user-active-org", org.parse().unwrap());
        }
        r
    }

    fn id(name: &str, org: &str) -> Option<SecretIdentifier> {
        Some(SecretIdentifier {
            name: name.into(),
            organization: org.into(),
            ..Default::default()
        })
    }

    fn value(v: &str) -> Option<SecretSpec> {
        Some(SecretSpec {
            r#type: 0,
            value: Some(secret_spec::Value::StringValue(v.into())),
        })
    }

    #[tokio::test]
    async fn orgs_see_only_their_secrets_and_answers_hold_no_value() {
        let dir = tempfile::tempdir().unwrap();
        let api = SecretApi::new(Arc::new(Store::open(dir.path()).unwrap()));
        // The org from the identifier, or from union's header.
        api.create_secret(with_org(
            CreateSecretRequest {
                id: id("tok", "acme"),
                secret_spec: value("hunter2"),
            },
            "",
        ))
        .await
        .unwrap();
        api.create_secret(with_org(
            CreateSecretRequest {
                id: id("tok", ""),
                secret_spec: value("hunter3"),
            },
            "other",
        ))
        .await
        .unwrap();
        let list = |org: &str| {
            with_org(
                ListSecretsRequest {
                    organization: org.into(),
                    ..Default::default()
                },
                "",
            )
        };
        let acme = api.list_secrets(list("acme")).await.unwrap().into_inner();
        assert_eq!(acme.secrets.len(), 1);
        assert_eq!(acme.secrets[0].id.as_ref().unwrap().organization, "acme");
        assert!(api
            .list_secrets(list("nobody"))
            .await
            .unwrap()
            .into_inner()
            .secrets
            .is_empty());
        let got = api
            .get_secret(with_org(GetSecretRequest { id: id("tok", "") }, "other"))
            .await
            .unwrap()
            .into_inner();
        let text = format!("{got:?}{acme:?}");
        assert!(!text.contains("hunter"), "{text}");
        let missing = api
            .get_secret(with_org(GetSecretRequest { id: id("tok", "") }, ""))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
        let dup = api
            .create_secret(with_org(
                CreateSecretRequest {
                    id: id("tok", "acme"),
                    secret_spec: value("again"),
                },
                "",
            ))
            .await
            .unwrap_err();
        assert_eq!(dup.code(), tonic::Code::AlreadyExists);
        assert!(!dup.message().contains("again"));
        let bad = api
            .create_secret(with_org(
                CreateSecretRequest {
                    id: id("../x", ""),
                    secret_spec: value("v"),
                },
                "",
            ))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    }
}
