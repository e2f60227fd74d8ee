//! Flyte wire types, exactly as flytekit 1.16 speaks them.
//!
//! Generated at build time (see `build.rs`) from the file descriptors carried by the PyPI package
//! `flyteidl` ([`FLYTEIDL_VERSION`]: 1.16.8), exported once into `proto/flyteidl.fds` by
//! `proto/regenerate.sh` and committed, not from copied `.proto` files. Protobuf packages map to
//! modules one to one:
//!
//! - [`flyteidl::core`]: `TaskTemplate`, `TaskMetadata`, `WorkflowTemplate`, `Literal`, ...;
//! - [`flyteidl::admin`]: `TaskSpec`, `WorkflowSpec`, `LaunchPlan`, `ExecutionCreateRequest`, ...;
//! - [`flyteidl::event`], [`flyteidl::plugins`];
//! - [`flyteidl::service`]: tonic clients and servers, e.g.
//!   `service::admin_service_client::AdminServiceClient`,
//!   `service::admin_service_server::{AdminService, AdminServiceServer}`,
//!   `service::data_proxy_service_client::DataProxyServiceClient`, and the auth, identity, signal
//!   and agent services.
//!
//! Google's well-known types (`Timestamp`, `Duration`, `Struct`, `Any`, and the wrappers, which
//! become `Option<bool>` etc.) are [`prost_types`], re-exported here as [`google_protobuf`].
//!
//! union's remote image builder (the PyPI package `union`, [`UNION_VERSION`]): its embedded
//! descriptors for `imagebuilder/*.proto` and their imports, exported into `proto/union.fds`,
//! become [`cloudidl::imagebuilder`] (`ImageService`: `image_service_client::ImageServiceClient`,
//! `image_service_server::{ImageService, ImageServiceServer}`, `GetImageRequest`, `Image`, ...),
//! [`cloudidl::common`] (`ProjectIdentifier`, ...) and [`validate`] (its option messages).
//!
//! Our own services: every `proto/*.proto` file is compiled too (with protox, no system `protoc`);
//! its package appears as a module here (package `union.x` → `union_idl::union::x`), and it may
//! import any flyteidl file, whose types resolve to [`flyteidl`].
//!
//! Owns: the generated types. Depends on nothing of ours.

#![allow(clippy::all, missing_docs, rustdoc::all)]

include!(concat!(env!("OUT_DIR"), "/flyteidl/_includes.rs"));
include!(concat!(env!("OUT_DIR"), "/union/_includes.rs"));
include!(concat!(env!("OUT_DIR"), "/local/_includes.rs"));

/// Google's well-known types, as the generated code uses them.
pub use prost_types as google_protobuf;

/// Version of the `flyteidl` distribution the types were generated from.
pub const FLYTEIDL_VERSION: &str = env!("UNION_FLYTEIDL_VERSION");

/// Version of the `union` distribution union's image builder and secret types were generated from.
pub const UNION_VERSION: &str = env!("UNION_UNION_VERSION");

/// The serialized `FileDescriptorSet` of union's image builder and secret types (and their imports).
pub const UNION_DESCRIPTOR_SET: &[u8] = include_bytes!("../proto/union.fds");

/// The serialized `FileDescriptorSet` the types were generated from (every flyteidl file and its
/// Google imports, dependencies first): for reflection, and to check the schema in tests.
pub const FLYTEIDL_DESCRIPTOR_SET: &[u8] = include_bytes!("../proto/flyteidl.fds");
