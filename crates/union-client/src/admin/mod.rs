//! A small FlyteAdmin client: the generated tonic stubs wrapped so that every failure is a typed
//! error naming the endpoint, the config source and the entity, and registration semantics
//! (ALREADY_EXISTS is success; "different structure" is not) live in one place.

use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use crate::auth::{AuthChannel, AuthError, Notify, Session, TlsSettings};
use crate::config::{Settings, Source};
pub use crate::execution_options::ExecutionOptions;

mod executions;
use union_idl::flyteidl::admin;
use union_idl::flyteidl::core;
use union_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use union_idl::flyteidl::service::data_proxy_service_client::DataProxyServiceClient;
use union_idl::flyteidl::service::signal_service_client::SignalServiceClient;
use union_idl::flyteidl::service::{CreateUploadLocationRequest, CreateUploadLocationResponse};
use union_idl::google_protobuf::value::Kind as prost_types_kind;

/// Errors talking to FlyteAdmin.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot reach FlyteAdmin at {endpoint} (set by {source_desc}): {detail}")]
    Unreachable {
        endpoint: String,
        source_desc: String,
        detail: String,
        hint: String,
    },
    /// The connection broke after it was established (the server went away mid-command).
    #[error("lost the connection to FlyteAdmin at {endpoint} during {rpc} for {what}: {detail}")]
    ConnectionLost {
        endpoint: String,
        rpc: &'static str,
        what: String,
        detail: String,
    },
    #[error("{kind} {id} is already registered with different content")]
    DifferentStructure {
        kind: &'static str,
        id: String,
        message: String,
    },
    #[error("{rpc} for {what} failed: {code:?}: {message}")]
    Rpc {
        rpc: &'static str,
        what: String,
        code: Code,
        message: String,
    },
    #[error("invalid admin endpoint `{endpoint}` (set by {source_desc}): {detail}")]
    BadEndpoint {
        endpoint: String,
        source_desc: String,
        detail: String,
    },
    /// Inputs or outputs too large to come inline could not be fetched from where they are.
    #[error("cannot read the {what} of execution {execution} from {url}: {detail}")]
    OffloadedData {
        what: &'static str,
        execution: String,
        /// Without its query (a signed URL's query is a credential).
        url: String,
        detail: String,
    },
    /// The server asked for credentials and getting them failed.
    #[error("{rpc} for {what}: not authenticated")]
    Auth {
        rpc: &'static str,
        what: String,
        #[source]
        source: AuthError,
    },
}

impl union_diagnostics::Hint for AdminError {
    fn hints(&self) -> Vec<String> {
        match self {
            AdminError::Unreachable { hint, .. } => vec![hint.clone()],
            AdminError::ConnectionLost { .. } => vec![
                "check that the backend is still running (for the sandbox: `union sandbox start`), then run the command again".into(),
            ],
            AdminError::DifferentStructure { .. } => vec![
                "the code changed but the version did not: pass a new --version (or omit --version to derive one from the content)".into(),
            ],
            AdminError::Rpc { code: Code::DataLoss, .. } => vec![
                "the backend reports that its stored data is damaged; the message says what to do".into(),
            ],
            AdminError::Rpc { code: Code::Unauthenticated, .. } => vec![
                "the server wants credentials: set admin.authType (Pkce, DeviceFlow, ClientSecret or ExternalCommand) and what it needs in your config, or UNION_API_KEY".into(),
            ],
            AdminError::Auth { source, .. } => union_diagnostics::Hint::hints(source),
            _ => Vec::new(),
        }
    }
    fn detail(&self) -> Option<String> {
        match self {
            AdminError::DifferentStructure { message, .. } => Some(message.clone()),
            AdminError::Auth { source, .. } => union_diagnostics::Hint::detail(source),
            _ => None,
        }
    }
}

impl AdminError {
    /// Whether the backend could not be reached, or went away: `--skip-errors` does not skip
    /// these, and following an execution retries them.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            AdminError::Unreachable { .. } | AdminError::ConnectionLost { .. }
        )
    }
}

/// Outcome of a create call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    AlreadyExisted,
}

/// A URL's scheme, host (loopback names as one) and port, to tell whether two are one server.
fn origin(uri: &http::Uri) -> Option<(String, String, u16)> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let port = uri.port_u16().or(match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    let host = uri.host()?.to_ascii_lowercase();
    let host = match host.trim_start_matches('[').trim_end_matches(']') {
        "localhost" | "::1" => "127.0.0.1".to_string(),
        h if h.starts_with("127.") => "127.0.0.1".to_string(),
        _ => host,
    };
    Some((scheme, host, port))
}

/// A connected FlyteAdmin client.
#[derive(Clone)]
pub struct AdminClient {
    admin: AdminServiceClient<AuthChannel>,
    data_proxy: DataProxyServiceClient<AuthChannel>,
    channel: AuthChannel,
    endpoint: String,
    source: Source,
    insecure: bool,
    tls: TlsSettings,
    /// `control_plane_version.build` of the server's `GetVersion` at connect time ("" when it
    /// did not say): `union-sandbox` for the sandbox.
    server_build: String,
}

/// The `build` a union sandbox answers `GetVersion` with.
pub const SANDBOX_BUILD: &str = "union-sandbox";

fn build_of(v: &admin::GetVersionResponse) -> String {
    v.control_plane_version
        .as_ref()
        .map(|v| v.build.clone())
        .unwrap_or_default()
}

fn describe_transport(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.contains(&s) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

fn tls_hint(detail: &str, insecure: bool, endpoint: &str, source: &Source) -> String {
    let d = detail.to_ascii_lowercase();
    if !insecure && (d.contains("unknownissuer") || d.contains("invalid peer certificate")) {
        return format!(
            "the certificate of {endpoint} is not from a CA this machine trusts: set admin.caCertFilePath to that CA's PEM file (or SSL_CERT_FILE), or admin.insecureSkipVerify: true to skip the check"
        );
    }
    if !insecure
        && (d.contains("invalidcontenttype")
            || d.contains("corrupt message")
            || d.contains("wrong version number"))
    {
        return format!(
            "the server at {endpoint} does not speak TLS; set `admin.insecure: true` in {} (or FLYTE_PLATFORM_INSECURE=true)",
            match source { Source::File(p) => p.display().to_string(), _ => "your config file".into() }
        );
    }
    if insecure
        && (d.contains("frame with invalid size")
            || d.contains("invalid http version")
            || d.contains("h2 protocol error")
            || d.contains("connection reset")
            || d.contains("operation was canceled")
            || d.contains("connection closed"))
    {
        return format!(
            "the server at {endpoint} may require TLS; set `admin.insecure: false` (or FLYTE_PLATFORM_INSECURE=false)"
        );
    }
    if d.contains("connection refused") || d.contains("tcp connect error") {
        if crate::config::is_loopback(endpoint) {
            return "nothing listens there; start the local backend with `union sandbox start`, or point admin.endpoint at your cluster".into();
        }
        return "check admin.endpoint in your config, or FLYTE_PLATFORM_URL".into();
    }
    "check admin.endpoint and admin.insecure in your config".into()
}

impl AdminClient {
    /// Connect to the endpoint in `settings` (fails fast, with a clear error, when it is down).
    /// `notify` shows the user what an interactive login needs them to do.
    pub async fn connect(settings: &Settings, notify: Notify) -> Result<AdminClient, AdminError> {
        let scheme = if settings.insecure { "http" } else { "https" };
        let url = format!("{scheme}://{}", settings.endpoint);
        let bad = |detail: String| AdminError::BadEndpoint {
            endpoint: settings.endpoint.clone(),
            source_desc: settings.endpoint_source.to_string(),
            detail,
        };
        let mut ep = Endpoint::from_shared(url).map_err(|e| bad(e.to_string()))?;
        ep = ep
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .http2_adaptive_window(true)
            .timeout(Duration::from_secs(120));
        let host = settings
            .endpoint
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&settings.endpoint)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let connected = if !settings.insecure && settings.insecure_skip_verify {
            // Our connector does the TLS; tonic refuses an https URL it would not secure itself,
            // so it gets http, and requests still say https through the origin.
            let plain = Endpoint::from_shared(format!("http://{}", settings.endpoint))
                .map_err(|e| bad(e.to_string()))?
                .connect_timeout(Duration::from_secs(10))
                .tcp_nodelay(true)
                .http2_adaptive_window(true)
                .timeout(Duration::from_secs(120))
                .origin(
                    format!("https://{}", settings.endpoint)
                        .parse()
                        .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?,
                );
            plain
                .connect_with_connector(crate::tls::skip_verify_connector(host))
                .await
        } else {
            if !settings.insecure {
                let mut tls = ClientTlsConfig::new().with_native_roots();
                if let Some(ca) = &settings.ca_cert_file {
                    let pem = std::fs::read(ca).map_err(|e| {
                        bad(format!("cannot read caCertFilePath {}: {e}", ca.display()))
                    })?;
                    tls = tls.ca_certificate(Certificate::from_pem(pem));
                }
                tls = tls.domain_name(host);
                ep = ep
                    .tls_config(tls)
                    .map_err(|e| bad(describe_transport(&e)))?;
            }
            ep.connect().await
        };
        let raw = connected.map_err(|e| {
            let detail = describe_transport(&e);
            AdminError::Unreachable {
                hint: tls_hint(
                    &detail,
                    settings.insecure,
                    &settings.endpoint,
                    &settings.endpoint_source,
                ),
                endpoint: settings.endpoint.clone(),
                source_desc: settings.endpoint_source.to_string(),
                detail,
            }
        })?;
        let tls = TlsSettings {
            skip_verify: settings.insecure_skip_verify,
            ca_cert_file: settings.ca_cert_file.clone(),
        };
        let session = Session::open(
            &settings.endpoint,
            settings.auth.clone(),
            tls.clone(),
            notify,
            raw.clone(),
        )
        .await;
        let channel = AuthChannel::new(raw, Some(session), settings.org.clone());
        let (admin, data_proxy) = stubs(&channel);
        let client = AdminClient {
            admin,
            data_proxy,
            channel,
            endpoint: settings.endpoint.clone(),
            source: settings.endpoint_source.clone(),
            insecure: settings.insecure,
            tls,
            server_build: String::new(),
        };
        if settings.org.is_none() && settings.serverless {
            // union's `_get_organization` on Serverless: the user's handle is the org, asked
            // before anything else (a Serverless tenant refuses other calls without an org).
            let who = client.user_info().await?;
            let handle = who
                .additional_claims
                .as_ref()
                .and_then(|c| c.fields.get("userhandle"))
                .and_then(|v| match &v.kind {
                    Some(prost_types_kind::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .filter(|h| !h.is_empty());
            if let Some(org) = handle {
                let mut client = client.with_org(org);
                client.server_build = build_of(&client.get_version().await?);
                return Ok(client);
            }
        }
        // One cheap call so that TLS/plaintext mismatches (and a login, when the server wants
        // one) happen here, not mid-registration.
        let mut client = client;
        client.server_build = build_of(&client.get_version().await?);
        Ok(client)
    }

    /// Does this client speak plaintext gRPC (`insecure: true`)?
    pub fn is_plaintext(&self) -> bool {
        self.insecure
    }

    /// Is the server a union sandbox (its `GetVersion` says [`SANDBOX_BUILD`])?
    pub fn is_sandbox(&self) -> bool {
        self.server_build == SANDBOX_BUILD
    }

    /// The organization on every call: `--org`, the API key's, or on Serverless the user's.
    pub fn org(&self) -> Option<&str> {
        self.channel.org()
    }

    /// The same client with `org` on every call.
    fn with_org(self, org: String) -> AdminClient {
        let channel = self.channel.with_org(org);
        let (admin, data_proxy) = stubs(&channel);
        AdminClient {
            admin,
            data_proxy,
            channel,
            ..self
        }
    }

    /// The authenticated channel, for other services on the same endpoint.
    pub fn channel(&self) -> AuthChannel {
        self.channel.clone()
    }

    /// How TLS is checked (`caCertFilePath`, `insecureSkipVerify`): signed upload and download
    /// URLs on the same server are fetched the same way, as flytekit does.
    pub fn tls(&self) -> &TlsSettings {
        &self.tls
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The credentials this client's calls carry now, for an HTTP request to `url` on the same
    /// server (a sandbox's task log link): None without authentication, before a token was
    /// fetched, or when `url` is another origin, since a token must never reach another host.
    /// Loopback names count as one host: the sandbox links `127.0.0.1` whatever name reached it.
    pub fn authorization_for(&self, url: &str) -> Option<(http::HeaderName, http::HeaderValue)> {
        let scheme = if self.insecure { "http" } else { "https" };
        let ours: http::Uri = format!("{scheme}://{}", self.endpoint).parse().ok()?;
        let theirs: http::Uri = url.parse().ok()?;
        if origin(&ours)? != origin(&theirs)? {
            return None;
        }
        let header = self.channel.session()?.header()?;
        Some((header.name, header.value))
    }

    pub(crate) fn status_error(&self, rpc: &'static str, what: String, s: Status) -> AdminError {
        if s.code() == Code::Unauthenticated {
            if let Some(source) = self.channel.session().and_then(|x| x.take_error()) {
                return AdminError::Auth { rpc, what, source };
            }
        }
        // Transport-level failures surface as these codes; on the first call (GetVersion) a
        // cancelled stream is what a TLS server does to a plaintext HTTP/2 preface.
        let transport = s.code() == Code::Unavailable
            || (matches!(s.code(), Code::Unknown | Code::Internal)
                && s.message().contains("transport"))
            || (rpc == "GetVersion" && s.code() == Code::Cancelled);
        if transport && rpc != "GetVersion" {
            // connect() checked the server with GetVersion: it answered, so this is not a
            // configuration problem but a server that went away (or a network that broke).
            return AdminError::ConnectionLost {
                endpoint: self.endpoint.clone(),
                rpc,
                what,
                detail: s.message().to_string(),
            };
        }
        if transport {
            let detail = format!("{}: {}", rpc, s.message());
            let hint = if rpc == "GetVersion" && self.insecure {
                // TCP connected, yet plaintext gRPC failed: typically a TLS-only server.
                format!(
                    "the server at {} accepted the connection but not plaintext gRPC; it may require TLS: set `admin.insecure: false` (or FLYTE_PLATFORM_INSECURE=false)",
                    self.endpoint
                )
            } else {
                tls_hint(&detail, self.insecure, &self.endpoint, &self.source)
            };
            return AdminError::Unreachable {
                hint,
                endpoint: self.endpoint.clone(),
                source_desc: self.source.to_string(),
                detail,
            };
        }
        AdminError::Rpc {
            rpc,
            what,
            code: s.code(),
            message: s.message().to_string(),
        }
    }

    /// AdminService.GetVersion (a liveness check).
    pub async fn get_version(&self) -> Result<admin::GetVersionResponse, AdminError> {
        let mut c = self.admin.clone();
        c.get_version(admin::GetVersionRequest {})
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.status_error("GetVersion", "the server".into(), s))
    }

    /// IdentityService.UserInfo: who the credentials are (what `union create login` calls to
    /// make the login happen).
    pub async fn user_info(
        &self,
    ) -> Result<union_idl::flyteidl::service::UserInfoResponse, AdminError> {
        let mut c =
            union_idl::flyteidl::service::identity_service_client::IdentityServiceClient::new(
                self.channel.clone(),
            );
        c.user_info(union_idl::flyteidl::service::UserInfoRequest {})
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.status_error("UserInfo", "the signed-in user".into(), s))
    }

    /// SignalService.ListSignals: the signals of an execution's gate nodes (those reached so far).
    pub async fn list_signals(
        &self,
        id: &core::WorkflowExecutionIdentifier,
    ) -> Result<Vec<admin::Signal>, AdminError> {
        let mut c = SignalServiceClient::new(self.channel.clone());
        let req = admin::SignalListRequest {
            workflow_execution_id: Some(id.clone()),
            limit: 1000,
            ..Default::default()
        };
        c.list_signals(req)
            .await
            .map(|r| r.into_inner().signals)
            .map_err(|s| self.status_error("ListSignals", format!("execution {}", id.name), s))
    }

    /// SignalService.SetSignal: approve, reject or give an input to a waiting gate node.
    pub async fn set_signal(
        &self,
        id: &core::WorkflowExecutionIdentifier,
        signal_id: &str,
        value: core::Literal,
    ) -> Result<(), AdminError> {
        let mut c = SignalServiceClient::new(self.channel.clone());
        let req = admin::SignalSetRequest {
            id: Some(core::SignalIdentifier {
                signal_id: signal_id.to_string(),
                execution_id: Some(id.clone()),
            }),
            value: Some(value),
        };
        c.set_signal(req).await.map(|_| ()).map_err(|s| {
            self.status_error(
                "SetSignal",
                format!("signal {signal_id} of execution {}", id.name),
                s,
            )
        })
    }

    /// DataProxyService.CreateUploadLocation.
    pub async fn create_upload_location(
        &self,
        req: CreateUploadLocationRequest,
    ) -> Result<CreateUploadLocationResponse, AdminError> {
        let what = req.filename.clone();
        let mut c = self.data_proxy.clone();
        c.create_upload_location(req)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.status_error("CreateUploadLocation", what, s))
    }

    fn created(
        &self,
        kind: &'static str,
        rpc: &'static str,
        id: &core::Identifier,
        r: Result<(), Status>,
    ) -> Result<Created, AdminError> {
        match r {
            Ok(()) => Ok(Created::New),
            Err(s) if s.code() == Code::AlreadyExists => Ok(Created::AlreadyExisted),
            Err(s)
                if s.code() == Code::InvalidArgument
                    && s.message().contains("different structure") =>
            {
                Err(AdminError::DifferentStructure {
                    kind,
                    id: id_text(id),
                    message: s.message().to_string(),
                })
            }
            Err(s) => Err(self.status_error(rpc, format!("{kind} {}", id_text(id)), s)),
        }
    }

    /// CreateTask; ALREADY_EXISTS (the identical spec is registered) counts as success.
    pub async fn create_task(
        &self,
        id: core::Identifier,
        spec: admin::TaskSpec,
    ) -> Result<Created, AdminError> {
        let mut c = self.admin.clone();
        let r = c
            .create_task(admin::TaskCreateRequest {
                id: Some(id.clone()),
                spec: Some(spec),
            })
            .await
            .map(|_| ());
        self.created("task", "CreateTask", &id, r)
    }

    /// CreateWorkflow; ALREADY_EXISTS counts as success.
    pub async fn create_workflow(
        &self,
        id: core::Identifier,
        spec: admin::WorkflowSpec,
    ) -> Result<Created, AdminError> {
        let mut c = self.admin.clone();
        let r = c
            .create_workflow(admin::WorkflowCreateRequest {
                id: Some(id.clone()),
                spec: Some(spec),
            })
            .await
            .map(|_| ());
        self.created("workflow", "CreateWorkflow", &id, r)
    }

    /// CreateLaunchPlan; ALREADY_EXISTS counts as success.
    pub async fn create_launch_plan(
        &self,
        id: core::Identifier,
        spec: admin::LaunchPlanSpec,
    ) -> Result<Created, AdminError> {
        let mut c = self.admin.clone();
        let r = c
            .create_launch_plan(admin::LaunchPlanCreateRequest {
                id: Some(id.clone()),
                spec: Some(spec),
            })
            .await
            .map(|_| ());
        self.created("launch plan", "CreateLaunchPlan", &id, r)
    }

    /// UpdateLaunchPlan(ACTIVE).
    pub async fn activate_launch_plan(&self, id: core::Identifier) -> Result<(), AdminError> {
        let mut c = self.admin.clone();
        c.update_launch_plan(admin::LaunchPlanUpdateRequest {
            id: Some(id.clone()),
            state: admin::LaunchPlanState::Active as i32,
        })
        .await
        .map(|_| ())
        .map_err(|s| {
            self.status_error(
                "UpdateLaunchPlan",
                format!("launch plan {}", id_text(&id)),
                s,
            )
        })
    }

    /// The raw generated client, for calls not wrapped here.
    pub fn raw(&self) -> AdminServiceClient<AuthChannel> {
        self.admin.clone()
    }
}

/// The generated clients over `channel`, with room for the big specs flytekit registers.
fn stubs(
    channel: &AuthChannel,
) -> (
    AdminServiceClient<AuthChannel>,
    DataProxyServiceClient<AuthChannel>,
) {
    let max = 64 * 1024 * 1024;
    (
        AdminServiceClient::new(channel.clone())
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        DataProxyServiceClient::new(channel.clone()).max_decoding_message_size(max),
    )
}

/// `project/domain/name@version`, how ids are shown to users.
pub fn id_text(id: &core::Identifier) -> String {
    format!("{}/{}/{}@{}", id.project, id.domain, id.name, id.version)
}

#[cfg(test)]
mod tests {
    use super::origin;

    fn of(url: &str) -> Option<(String, String, u16)> {
        origin(&url.parse().unwrap())
    }

    #[test]
    fn origins_compare_scheme_host_and_port_with_loopback_names_as_one() {
        let sandbox = of("http://127.0.0.1:30080/logs/p/d/x/n0/0");
        assert_eq!(sandbox, of("http://localhost:30080"));
        assert_eq!(sandbox, of("http://[::1]:30080"));
        assert_ne!(sandbox, of("http://127.0.0.1:30081/logs"));
        assert_ne!(sandbox, of("https://127.0.0.1:30080/logs"));
        assert_ne!(sandbox, of("http://logs.example.com:30080/x"));
        assert_eq!(
            of("https://Flyte.Example.com"),
            of("https://flyte.example.com:443/x")
        );
        assert_eq!(of("/relative"), None);
    }
}
