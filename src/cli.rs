//! The command line, declared with clap derive. Commands receive resolved settings, not these
//! structs, where settings come from several places (flag > env > config file).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A fast command-line tool for Flyte and Union: run workflows locally with your own flytekit.
#[derive(Debug, Parser)]
#[command(name = "union", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a task, workflow or launch plan from a Python file, locally and in-process.
    ///
    /// Inputs are flags named after the entity's inputs, converted exactly as `pyflyte run`
    /// converts them. `union run FILE --help` lists the entities in FILE;
    /// `union run FILE ENTITY --help` lists ENTITY's inputs.
    #[command(disable_help_flag = true)]
    Run(RunArgs),

    /// Run a local Flyte backend (FlyteAdmin over gRPC) to register and inspect workflows.
    Sandbox(SandboxArgs),

    /// Build and push the ImageSpec images of the tasks under PATH, or of an ImageSpec YAML file.
    Build(BuildArgs),

    /// List the tasks, workflows and launch plans that files or packages define.
    ///
    /// Modules are found and imported as `pyflyte register` does: the project root is the first
    /// ancestor directory without `__init__.py`, and a directory stands for its package and every
    /// module below it. Everything that exists after import is listed, named `<module>.<function>`.
    List(ListArgs),

    /// Serialize tasks, workflows and launch plans to pyflyte-package-style .pb files, plus the
    /// code archive. No network.
    Package(PackageArgs),

    /// Register tasks, workflows and launch plans with FlyteAdmin (a Flyte or Union cluster, or
    /// `union sandbox`): upload the code archive, then create every entity.
    Register(RegisterArgs),

    /// Look at executions, their signals, and secrets on the backend.
    #[command(subcommand)]
    Get(GetCommand),

    /// Stop a running execution.
    Terminate(TerminateArgs),

    /// Approve a gate node waiting on `approve(...)` (FlyteRemote's `approve`).
    Approve(SignalArgs),

    /// Reject a gate node waiting on `approve(...)`: the node fails (FlyteRemote's `reject`).
    Reject(SignalArgs),

    /// Give a gate node waiting on `wait_for_input(...)` its value (FlyteRemote's
    /// `set_signal`); VALUE is read as the signal's type: an integer, a float, a string,
    /// true/false, or JSON for lists and dicts.
    Signal(SetSignalArgs),

    /// Create things on the backend: `union create login` logs in to a Union tenant or a Flyte
    /// cluster, `union create secret` stores a secret for tasks, as union's own commands do.
    #[command(subcommand)]
    Create(CreateCommand),

    /// Delete things on the backend: `union delete secret NAME`.
    #[command(subcommand)]
    Delete(DeleteCommand),

    /// Look at or stop the warm interpreters: background processes that keep flytekit imported
    /// so that `run`, `list`, `package`, `register` and `build` start in milliseconds.
    ///
    /// One runs per working directory, environment and virtualenv; each exits after 10 idle
    /// minutes (UNION_WARM_IDLE_SECS). UNION_WARM=0 turns them off; they are off in CI.
    #[command(subcommand)]
    Warm(WarmCommand),

    /// The warm interpreter's server (started by union itself).
    #[command(name = "__warm-server", hide = true)]
    WarmServer { socket: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Log in: write ~/.union/config.yaml for the host (as `union create login` writes it),
    /// then authenticate in the browser (PKCE) or with a code (device flow); the token is
    /// cached in ~/.union/keyring.cfg, shared with union and pyflyte.
    Login(LoginArgs),
    /// Create a secret that tasks read with `current_context().secrets.get(key=NAME)` (asked for
    /// with `secret_requests=[Secret(key=NAME)]`). The value comes from --value, --value-file, or
    /// a hidden prompt; it is never printed.
    Secret(CreateSecretArgs),
}

#[derive(Debug, Subcommand)]
pub enum DeleteCommand {
    /// Delete the secret NAME (in --project/--domain when it was created there).
    Secret(DeleteSecretArgs),
}

/// What `union create|get|delete secret` connect with (no project/domain defaults: a secret
/// without them is visible in every project and domain).
#[derive(Debug, Args)]
pub struct SecretConnectionArgs {
    /// Config file (default: $UNION_API_KEY, $UNION_CONFIG, $FLYTECTL_CONFIG, ~/.union/config.yaml, ~/.uctl/config.yaml, ~/.flyte/config.yaml).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// FlyteAdmin endpoint, host:port (overrides admin.endpoint).
    #[arg(long, value_name = "HOST:PORT")]
    pub endpoint: Option<String>,

    /// Use plaintext gRPC (overrides admin.insecure).
    #[arg(long)]
    pub insecure: bool,

    /// Project the secret belongs to (default: none, i.e. every project).
    #[arg(short, long)]
    pub project: Option<String>,

    /// Domain the secret belongs to (default: none, i.e. every domain).
    #[arg(short, long)]
    pub domain: Option<String>,

    /// Organization on a Union tenant (default: the one in UNION_API_KEY, if any).
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
}

/// union's `--type`: only image pull secrets have a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecretTypeArg {
    /// A Docker config JSON (with --value-file) for pulling images.
    ImagePullSecret,
}

#[derive(Debug, Args)]
pub struct CreateSecretArgs {
    /// The secret's name (or --name).
    #[arg(value_name = "NAME", conflicts_with = "name_option")]
    pub name: Option<String>,

    /// The secret's name.
    #[arg(long = "name", value_name = "NAME")]
    pub name_option: Option<String>,

    /// The value (visible in your shell's history: prefer the prompt or --value-file).
    #[arg(long, conflicts_with = "value_file")]
    pub value: Option<String>,

    /// A file holding the value, stored as bytes (`-`: standard input).
    #[arg(short = 'f', long, value_name = "FILE")]
    pub value_file: Option<PathBuf>,

    /// The secret's type (default: generic).
    #[arg(short = 't', long = "type", value_enum, value_name = "TYPE")]
    pub secret_type: Option<SecretTypeArg>,

    #[command(flatten)]
    pub backend: SecretConnectionArgs,
}

#[derive(Debug, Args)]
pub struct GetSecretArgs {
    /// Show only this secret (default: list them all).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    #[command(flatten)]
    pub backend: SecretConnectionArgs,
}

#[derive(Debug, Args)]
pub struct DeleteSecretArgs {
    /// The secret's name (or --name).
    #[arg(value_name = "NAME", conflicts_with = "name_option")]
    pub name: Option<String>,

    /// The secret's name.
    #[arg(long = "name", value_name = "NAME")]
    pub name_option: Option<String>,

    #[command(flatten)]
    pub backend: SecretConnectionArgs,
}

/// How `union create login` authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoginAuth {
    /// In a browser on this machine.
    Pkce,
    /// With a code typed in a browser anywhere (for machines without one).
    DeviceFlow,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The tenant or cluster, e.g. `acme.union.ai` or `flyte.example.com:443`.
    #[arg(
        long,
        value_name = "HOST",
        conflicts_with = "serverless",
        required_unless_present = "serverless"
    )]
    pub host: Option<String>,
    /// Union Serverless ($UNION_SERVERLESS_ENDPOINT, or serverless-1.us-east-2.s.union.ai).
    #[arg(long)]
    pub serverless: bool,
    /// How to authenticate.
    #[arg(long, value_enum, default_value = "pkce")]
    pub auth: LoginAuth,
}

#[derive(Debug, Subcommand)]
pub enum WarmCommand {
    /// List the running warm interpreters.
    Status,
    /// Stop every running warm interpreter (commands they are serving finish first).
    Stop,
}

#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// List recent executions in a project/domain.
    Executions(GetExecutionsArgs),
    /// One execution: phase, duration, outputs or error, and each node's status.
    Execution(GetExecutionArgs),
    /// The signals an execution's gate nodes wait for (approvals and inputs), and their values.
    Signals(GetExecutionArgs),
    /// The secrets tasks can ask for (names, scopes and types; never values).
    Secret(GetSecretArgs),
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// The execution's name.
    pub execution: String,
    /// The signal: the name given to `approve(...)`.
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct SetSignalArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// The execution's name.
    pub execution: String,
    /// The signal: the name given to `wait_for_input(...)`.
    pub signal: String,
    /// Its value.
    pub value: String,
}

#[derive(Debug, Args)]
pub struct GetExecutionsArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// How many to show, newest first.
    #[arg(long, default_value = "20")]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct GetExecutionArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// The execution's name.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct TerminateArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// The execution's name.
    pub name: String,
    /// Why (recorded with the execution).
    #[arg(long, default_value = "terminated with union terminate")]
    pub cause: String,
}

/// Whether the cluster can pull the task images (checked before registering).
#[derive(Debug, Args, Default, Clone)]
pub struct PullArgs {
    /// Refuse to register when a task image cannot be pulled the way the cluster pulls it
    /// (default: warn and go on).
    #[arg(long)]
    pub require_pullable_images: bool,

    /// The cluster pulls task images with this image pull secret: check them with your own
    /// registry credentials instead of anonymously.
    #[arg(long, value_name = "SECRET_NAME")]
    pub image_pull_secret: Option<String>,
}

/// How an execution runs (pyflyte run's options for `--remote`, with its names and aliases).
#[derive(Debug, Args, Default)]
pub struct ExecutionArgs {
    /// With --remote: the Kubernetes service account the execution runs as.
    #[arg(long, value_name = "NAME")]
    pub service_account: Option<String>,

    /// With --remote: where the execution writes raw output data (e.g. s3://bucket/prefix).
    #[arg(long, alias = "raw-data-prefix", value_name = "URI")]
    pub raw_output_data_prefix: Option<String>,

    /// With --remote: labels on the execution, `KEY=VALUE`. Repeatable.
    #[arg(long = "labels", alias = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// With --remote: annotations on the execution, `KEY=VALUE`. Repeatable.
    #[arg(long = "annotations", alias = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    /// With --remote: tags on the execution. Repeatable.
    #[arg(long = "tags", alias = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// With --remote: recompute cached task outputs instead of reusing them.
    #[arg(long)]
    pub overwrite_cache: bool,

    /// With --remote: force every task's interruptible flag to true or false.
    #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
    pub interruptible: Option<bool>,

    /// With --remote: how many nodes of the workflow may run at once.
    #[arg(long, value_name = "N")]
    pub max_parallelism: Option<i32>,

    /// With --remote: the cluster pool to run in.
    #[arg(long, value_name = "POOL")]
    pub cluster_pool: Option<String>,

    /// With --remote: the execution cluster label to run on.
    #[arg(long, alias = "ecl", value_name = "LABEL")]
    pub execution_cluster_label: Option<String>,

    /// With --remote: send none of the launch plan's notifications.
    #[arg(long)]
    pub disable_notifications: bool,
}

/// How local files reach task containers (pyflyte's `--copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CopyArg {
    /// Every file under the project root, minus ignored ones (.gitignore, .dockerignore, .flyteignore).
    All,
    /// Only the Python modules that were loaded.
    Auto,
    /// No code archive: code must be in the image.
    None,
}

/// Options shared by commands that serialize entities.
#[derive(Debug, Args)]
pub struct SerializeArgs {
    /// Python files or package directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Images: `URI` for the default image, `NAME=URI` for `{{.image.NAME.fqn}}` references. Repeatable.
    #[arg(short = 'i', long = "image", value_name = "[NAME=]URI")]
    pub images: Vec<String>,

    /// Which local files are packaged for the task containers.
    #[arg(long, value_enum, default_value = "all")]
    pub copy: CopyArg,

    /// Where the code is unpacked inside the container.
    #[arg(short = 'D', long = "destination-dir", default_value = "/root")]
    pub destination_dir: String,

    /// Environment variables for every task container, `KEY=VALUE`. Repeatable.
    #[arg(long = "env", alias = "envvars", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Base image for ImageSpecs that name none [default: union.baseImage in the config, else debian:bookworm-slim].
    #[arg(long, env = "UNION_BASE_IMAGE", value_name = "URI")]
    pub base_image: Option<String>,

    /// Register even when an image's existence cannot be checked (registry down, credentials
    /// refused). By default that stops everything, unlike flytekit's silent "assume it exists".
    #[arg(long, env = "UNION_ALLOW_UNVERIFIED_IMAGES")]
    pub allow_unverified_images: bool,

    /// Show each entity as it is processed.
    #[arg(long)]
    pub verbose: bool,

    /// Only print warnings and errors.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PackageArgs {
    #[command(flatten)]
    pub common: SerializeArgs,

    /// The output directory (created if missing).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,

    /// Replace .pb files and archives already in DIR.
    #[arg(short, long)]
    pub force: bool,
}

/// Where to find FlyteAdmin and which project/domain to use.
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// Config file (default: $UNION_API_KEY, $UNION_CONFIG, $FLYTECTL_CONFIG, ~/.union/config.yaml, ~/.uctl/config.yaml, ~/.flyte/config.yaml).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// FlyteAdmin endpoint, host:port (overrides admin.endpoint).
    #[arg(long, value_name = "HOST:PORT")]
    pub endpoint: Option<String>,

    /// Use plaintext gRPC (overrides admin.insecure).
    #[arg(long)]
    pub insecure: bool,

    /// Project (default: task.project, $FLYTE_DEFAULT_PROJECT, flytesnacks).
    #[arg(short, long)]
    pub project: Option<String>,

    /// Domain (default: task.domain, $FLYTE_DEFAULT_DOMAIN, development).
    #[arg(short, long)]
    pub domain: Option<String>,

    /// Organization on a Union tenant (default: the one in UNION_API_KEY, if any).
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub common: SerializeArgs,

    #[command(flatten)]
    pub backend: BackendArgs,

    /// Version for every entity (default: derived from the code, the specs and the images).
    #[arg(short = 'v', long)]
    pub version: Option<String>,

    /// The Kubernetes service account the launch plans' executions run as.
    #[arg(long, value_name = "NAME")]
    pub service_account: Option<String>,

    /// Where the launch plans' executions write raw output data (e.g. s3://bucket/prefix).
    #[arg(long, alias = "raw-output-data-prefix", value_name = "URI")]
    pub raw_data_prefix: Option<String>,

    #[command(flatten)]
    pub pull: PullArgs,

    /// Print what would be uploaded and registered; upload nothing, call nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Activate every launch plan (by default only scheduled ones are, as pyflyte does).
    #[arg(long)]
    pub activate_launchplans: bool,

    /// How many distinct images to build at once.
    #[arg(long, env = "UNION_BUILD_JOBS", default_value_t = 2, value_name = "N")]
    pub jobs: usize,

    /// Go on registering the rest when an entity fails.
    #[arg(long)]
    pub skip_errors: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Python files or package directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Print machine-readable JSON (every entity with its interface and container image).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Print help (for `union run FILE`: the entities in FILE; with ENTITY: its inputs).
    #[arg(short = 'h', long = "help", action = clap::ArgAction::SetTrue)]
    pub help: bool,

    /// Run on the backend (a Flyte/Union cluster or `union sandbox`) instead of in-process:
    /// build images, upload the code, register, and start an execution.
    #[arg(short = 'r', long)]
    pub remote: bool,

    /// With --remote: follow the execution node by node, print its outputs, and exit non-zero if
    /// it fails.
    #[arg(long, alias = "wait-execution")]
    pub wait: bool,

    /// With --remote: the execution's name (default: generated by the backend).
    #[arg(long = "name", value_name = "EXECUTION_NAME")]
    pub execution_name: Option<String>,

    /// With --remote: version to register under (default: derived from the content).
    #[arg(long)]
    pub version: Option<String>,

    /// With --remote: which local files are packaged (pyflyte run's default is `auto`).
    #[arg(long, value_enum, default_value = "auto")]
    pub copy: CopyArg,

    /// With --remote: images, `URI` for the default image or `NAME=URI`. Repeatable.
    #[arg(short = 'i', long = "image", value_name = "[NAME=]URI")]
    pub images: Vec<String>,

    /// With --remote: environment variables for the task containers, `KEY=VALUE`. Repeatable.
    #[arg(long = "env", alias = "envvars", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// With --remote: base image for ImageSpecs that name none.
    #[arg(long, env = "UNION_BASE_IMAGE", value_name = "URI")]
    pub base_image: Option<String>,

    #[command(flatten)]
    pub execution: ExecutionArgs,

    #[command(flatten)]
    pub pull: PullArgs,

    /// With --remote: go on when an image's existence cannot be checked.
    #[arg(long, env = "UNION_ALLOW_UNVERIFIED_IMAGES")]
    pub allow_unverified_images: bool,

    /// How many distinct images to build at once.
    #[arg(long, env = "UNION_BUILD_JOBS", default_value_t = 2, value_name = "N")]
    pub jobs: usize,

    #[command(flatten)]
    pub backend: BackendArgs,

    /// Only print warnings, errors and results.
    #[arg(short, long)]
    pub quiet: bool,

    /// The Python file that defines the entity.
    pub file: Option<PathBuf>,

    /// ENTITY (the task, workflow or launch plan to run, by its name in FILE), then its inputs as
    /// `--INPUT VALUE` (bools as `--INPUT` / `--no_INPUT`). Options for `union run` itself go before FILE.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ENTITY [INPUTS]"
    )]
    pub rest: Vec<String>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}

/// `union build` options.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Python files or package directories (every ImageSpec their tasks use), or an ImageSpec
    /// YAML file (`*.yaml`/`*.yml`).
    #[arg(required = true, value_name = "PATH|SPEC.yaml")]
    pub paths: Vec<PathBuf>,

    /// Print each image's name, whether it exists and its Dockerfile; build and push nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Build and push even when the image already exists.
    #[arg(long)]
    pub force: bool,

    /// Base image for ImageSpecs without `base_image` [default: debian:bookworm-slim].
    #[arg(long, env = "UNION_BASE_IMAGE", value_name = "URI")]
    pub base_image: Option<String>,

    /// No progress output; only errors and the built image names.
    #[arg(short, long)]
    pub quiet: bool,

    /// How many distinct images to build at once.
    #[arg(long, env = "UNION_BUILD_JOBS", default_value_t = 2, value_name = "N")]
    pub jobs: usize,
}

/// `union sandbox <command>`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub command: SandboxCommand,
}

/// Sandbox subcommands.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Start the sandbox in the foreground (Ctrl-C stops it).
    ///
    /// Point pyflyte or `union` at it with `admin.endpoint: dns:///127.0.0.1:30080` and
    /// `admin.insecure: true`.
    Start(SandboxStartArgs),
}

/// `union sandbox start` options.
#[derive(Debug, Args)]
pub struct SandboxStartArgs {
    /// Address to listen on.
    #[arg(long, default_value = union_sandbox::DEFAULT_HOST)]
    pub host: String,

    /// Port for gRPC and uploads.
    #[arg(long, env = "UNION_SANDBOX_PORT", default_value_t = union_sandbox::DEFAULT_PORT)]
    pub port: u16,

    /// Registry that the image builder pushes ImageSpecs without a registry to
    /// [default: the sandbox's own, localhost:<port>].
    // The help text is clap's, not rustdoc's: `<port>` is meant literally.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long, env = "UNION_SANDBOX_IMAGE_REGISTRY", value_name = "REGISTRY")]
    pub image_registry: Option<String>,

    /// Base image the image builder uses for ImageSpecs without `base_image`
    /// [default: debian:bookworm-slim].
    #[arg(long, env = "UNION_BASE_IMAGE", value_name = "URI")]
    pub base_image: Option<String>,

    /// Serve no image builder: builder="union" ImageSpecs say it is not enabled
    #[arg(long)]
    pub no_image_builder: bool,

    /// Where the sandbox keeps its database and blobs [default: ~/.union/sandbox].
    #[arg(long, env = "UNION_SANDBOX_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Require OAuth2 access tokens on every gRPC call, the sandbox being its own authorization
    /// server (client credentials, PKCE and device flow, as against flyteadmin).
    #[arg(long)]
    pub auth: bool,

    /// Lifetime of the access tokens it issues [default: 3600].
    #[arg(long, value_name = "SECONDS", requires = "auth")]
    pub auth_token_lifetime: Option<u64>,

    /// The redirect URI of the public client `flytectl` (PKCE flow)
    /// [default: http://localhost:53593/callback].
    #[arg(long, value_name = "URI", requires = "auth")]
    pub auth_redirect_uri: Option<String>,

    /// Org mode: every call must name this organization (`x-user-active-org`), and tokens carry it.
    #[arg(long, value_name = "ORG", requires = "auth")]
    pub org: Option<String>,

    /// Serve TLS with a certificate from a local CA kept in the data directory (its path is
    /// printed: clients trust it with `caCertFilePath` or SSL_CERT_FILE). A union API key
    /// always means TLS.
    #[arg(long)]
    pub tls: bool,
}
