//! Every environment variable `union` reads, by name, in one place (clap's `env =` attributes in
//! `cli.rs` name theirs inline: `UNION_BASE_IMAGE`, `UNION_ALLOW_UNVERIFIED_IMAGES`,
//! `UNION_SANDBOX_PORT`, `UNION_SANDBOX_DIR`, `UNION_BUILD_JOBS`).
//!
//! Read elsewhere, by the crates that own them: flytekit's and flytectl's configuration variables
//! (`union_client::config`), `DOCKER_HOST`, `DOCKER_CONFIG` (`union_image`, `union_registry`),
//! `FLYTE_PUSH_IMAGE_SPEC`, `FLYTE_FORCE_PUSH_IMAGE_SPEC` (`union_image::spec`),
//! `UNION_SANDBOX_MAX_PARALLELISM`, `UNION_SANDBOX_REGISTRY_GC_GRACE` (`union_sandbox`).

/// The user's virtualenv.
pub const VIRTUAL_ENV: &str = "VIRTUAL_ENV";
/// The warm interpreter: `0` off, `1` on (default: on outside CI).
pub const WARM: &str = "UNION_WARM";
/// Print a line when a command is served by the warm interpreter.
pub const WARM_DEBUG: &str = "UNION_WARM_DEBUG";
/// How long an idle warm interpreter lives, in seconds.
pub const WARM_IDLE_SECS: &str = "UNION_WARM_IDLE_SECS";
/// How many processes serialize (read by the bridge, `bridge/`).
pub const SERIALIZE_WORKERS: &str = "UNION_SERIALIZE_WORKERS";
/// A test hook: the point where a command waits ([`crate::process::test_pause_point`]).
pub const TEST_PAUSE_AT: &str = "UNION_TEST_PAUSE_AT";
/// A test hook: the file whose appearance ends the wait.
pub const TEST_PAUSE_UNTIL: &str = "UNION_TEST_PAUSE_UNTIL";
/// Set in a warm server started by a command: the descriptor it signals readiness on.
pub const WARM_READY_FD: &str = "UNION_WARM_READY_FD";
/// `CI`: set in continuous integration (read by `union_client::config::in_ci`).
pub const CI: &str = "CI";
/// The user's home (the sandbox's default data directory is under it).
pub const HOME: &str = "HOME";
