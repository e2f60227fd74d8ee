//! The command line, declared with clap derive. Commands receive resolved settings, not these
//! structs, where settings come from several places (flag > env > config file).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A fast command-line tool for Flyte and Union: run workflows locally with your own flytekit.
#[derive(Debug, Parser)]
#[command(name = "union", version, about, long_about = None, propagate_version = true)]
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

    /// The Python file that defines the entity.
    pub file: Option<PathBuf>,

    /// The task, workflow or launch plan to run (its name in FILE).
    pub entity: Option<String>,

    /// The entity's inputs, as `--INPUT VALUE` (bools as `--INPUT` / `--no_INPUT`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "INPUTS")]
    pub inputs: Vec<String>,
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
    #[arg(long, default_value_t = 2, value_name = "N")]
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
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Port for gRPC and uploads.
    #[arg(long, env = "UNION_SANDBOX_PORT", default_value_t = 30080)]
    pub port: u16,

    /// Registry that the image builder pushes ImageSpecs without a registry to.
    #[arg(
        long,
        env = "UNION_SANDBOX_IMAGE_REGISTRY",
        default_value = "localhost:30000",
        value_name = "REGISTRY"
    )]
    pub image_registry: String,

    /// Base image the image builder uses for ImageSpecs without `base_image`
    /// [default: debian:bookworm-slim].
    #[arg(long, env = "UNION_BASE_IMAGE", value_name = "URI")]
    pub base_image: Option<String>,

    /// Build no images: ImageSpecs with builder="union" then fail with a clear message.
    #[arg(long)]
    pub no_image_builder: bool,

    /// Where the sandbox keeps its database and blobs [default: ~/.union/sandbox].
    #[arg(long, env = "UNION_SANDBOX_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}
