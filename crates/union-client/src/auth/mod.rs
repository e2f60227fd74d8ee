//! Authentication as flytekit and union do it (issue 12, in progress): union's API keys,
//! `admin.authType`, and the client-credentials request's header and scope so far.
//! Still to come: discovery through AuthMetadataService, the token flows (ClientSecret, PKCE,
//! DeviceFlow, ExternalCommand), the per-call header and the retry on UNAUTHENTICATED.

pub mod api_key;
pub mod mode;
pub mod token;
