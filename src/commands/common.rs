//! Argument handling shared by package, register and run --remote.

use std::collections::BTreeMap;

use crate::cli::{BackendArgs, CopyArg, SerializeArgs};
use crate::diagnostics::CliError;
use crate::register::progress::{Progress, Verbosity};
use union_client::config::{self, Overrides, Settings};
use union_package::CopyMode;

/// `--copy` as the packaging mode.
pub fn copy_mode(c: CopyArg) -> CopyMode {
    match c {
        CopyArg::All => CopyMode::All,
        CopyArg::Auto => CopyMode::Auto,
        CopyArg::None => CopyMode::None,
    }
}

pub use crate::register::images::YamlImage;

fn is_yaml(v: &str) -> bool {
    v.ends_with(".yaml") || v.ends_with(".yml")
}

fn load_yaml_image(path: &str) -> Result<YamlImage, CliError> {
    let p = std::path::PathBuf::from(path);
    let host = union_image::HostEnv::current();
    let spec = union_image::ImageSpec::from_yaml_file(&p, &host).map_err(|e| {
        CliError::usage(format!("--image {path}: not a usable ImageSpec")).caused_by(e)
    })?;
    let ctx = union_image::TagContext::from_cwd()
        .map_err(|e| CliError::new("cannot read the current directory").caused_by(e))?;
    let name = spec.image_name(&ctx).map_err(|e| {
        CliError::new(format!("--image {path}: cannot compute its image name")).caused_by(e)
    })?;
    Ok(YamlImage {
        spec,
        name,
        path: p,
    })
}

/// What `--image` values say.
pub struct ImageArgs {
    /// The image of tasks that name none (`--image URI`).
    pub default: Option<String>,
    /// Images by name (pyflyte's `NAME=URI`).
    pub named: BTreeMap<String, String>,
    /// ImageSpec YAML files among them, which stand for their image name and must be built.
    pub specs: Vec<YamlImage>,
}

/// Split `--image` values into the default image, named images (pyflyte's `[NAME=]URI`), and the
/// ImageSpec YAML files among them.
pub fn parse_images_and_specs(values: &[String]) -> Result<ImageArgs, CliError> {
    let mut plain = Vec::new();
    let mut specs = Vec::new();
    for v in values {
        match v.split_once('=') {
            Some((name, uri)) if is_yaml(uri) && !name.contains('/') && !name.contains(':') => {
                let y = load_yaml_image(uri)?;
                plain.push(format!("{name}={}", y.name));
                specs.push(y);
            }
            _ if is_yaml(v) => {
                let y = load_yaml_image(v)?;
                plain.push(y.name.clone());
                specs.push(y);
            }
            _ => plain.push(v.clone()),
        }
    }
    let (default, named) = parse_images(&plain)?;
    Ok(ImageArgs {
        default,
        named,
        specs,
    })
}

/// Split `--image` values into the default image and named images (pyflyte's `[NAME=]URI`).
pub fn parse_images(
    values: &[String],
) -> Result<(Option<String>, BTreeMap<String, String>), CliError> {
    let mut default = None;
    let mut named = BTreeMap::new();
    for v in values {
        // A registry port (`host:5000/x`) has no '=' so only NAME=URI splits here.
        match v.split_once('=') {
            Some((name, uri)) if !name.is_empty() && !name.contains('/') && !name.contains(':') => {
                if uri.is_empty() {
                    return Err(CliError::usage(format!(
                        "--image {v}: the image URI after `=` is empty"
                    )));
                }
                if name == "default" {
                    default = Some(uri.to_string());
                }
                named.insert(name.to_string(), uri.to_string());
            }
            _ => {
                if default.replace(v.clone()).is_some() {
                    return Err(CliError::usage("more than one --image without a name")
                        .hint("only one default image; name the others: --image NAME=URI"));
                }
            }
        }
    }
    Ok((default, named))
}

/// Parse `--env KEY=VALUE` flags.
pub fn parse_env(values: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    parse_key_values("--env", values)
}

/// Parse `FLAG KEY=VALUE` flags (the last value of a key wins, as in pyflyte's callbacks).
pub fn parse_key_values(
    flag: &str,
    values: &[String],
) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for v in values {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| CliError::usage(format!("{flag} {v}: expected KEY=VALUE")))?;
        if k.is_empty() {
            return Err(CliError::usage(format!(
                "{flag} {v}: the name before `=` is empty"
            )));
        }
        out.insert(k.to_string(), val.to_string());
    }
    Ok(out)
}

/// How to check that the cluster can pull the task images.
pub fn pull_check(a: &crate::cli::PullArgs) -> crate::register::pullable::PullCheck {
    crate::register::pullable::PullCheck {
        require: a.require_pullable_images,
        with_credentials: a
            .image_pull_secret
            .as_deref()
            .is_some_and(|s| !s.is_empty()),
    }
}

/// The execution options of `run --remote`.
pub fn execution_options(
    a: &crate::cli::ExecutionArgs,
    envs: BTreeMap<String, String>,
) -> Result<union_client::ExecutionOptions, CliError> {
    Ok(union_client::ExecutionOptions {
        envs: envs.into_iter().collect(),
        labels: parse_key_values("--labels", &a.labels)?
            .into_iter()
            .collect(),
        annotations: parse_key_values("--annotations", &a.annotations)?
            .into_iter()
            .collect(),
        tags: a.tags.clone(),
        service_account: a.service_account.clone().filter(|s| !s.is_empty()),
        raw_output_data_prefix: a.raw_output_data_prefix.clone().filter(|s| !s.is_empty()),
        overwrite_cache: a.overwrite_cache,
        interruptible: a.interruptible,
        max_parallelism: a.max_parallelism,
        cluster_pool: a.cluster_pool.clone().filter(|s| !s.is_empty()),
        execution_cluster_label: a.execution_cluster_label.clone().filter(|s| !s.is_empty()),
        disable_notifications: a.disable_notifications,
    })
}

/// Resolve backend settings: flags over environment over config file.
pub fn settings(b: &BackendArgs) -> Result<Settings, union_client::ConfigError> {
    config::load(&Overrides {
        config: b.config.clone(),
        endpoint: b.endpoint.clone(),
        insecure: b.insecure.then_some(true),
        project: b.project.clone(),
        domain: b.domain.clone(),
        org: b.org.clone(),
    })
}

/// The async runtime for a command's network work (library code never creates one).
pub fn runtime() -> Result<Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map(|rt| Runtime(Some(rt)))
        .map_err(|e| CliError::new("cannot start the async runtime").caused_by(e))
}

/// A tokio runtime that does not wait for its threads when dropped: a command is over when its
/// result is printed, and joining idle workers only delays the exit.
pub struct Runtime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for Runtime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("runtime is present until dropped")
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Plan options for registering (register, run --remote): `--image` values merged with the
/// config's `images:`, the default image resolved, and `--copy none` refused without a version.
pub fn registration_options(
    settings: &Settings,
    image_args: &[String],
    copy: CopyArg,
    version: Option<String>,
    destination_dir: String,
    env: &[String],
) -> Result<crate::register::PlanOptions, CliError> {
    let ImageArgs {
        default: default_image,
        named: mut images,
        specs: yaml_images,
    } = parse_images_and_specs(image_args)?;
    for (k, v) in &settings.images {
        images.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let copy = copy_mode(copy);
    if copy == CopyMode::None && version.is_none() {
        return Err(CliError::usage("--copy none needs an explicit --version")
            .hint("without a code archive the version cannot be derived from the code; pass --version"));
    }
    Ok(crate::register::PlanOptions {
        project: settings.project.clone(),
        domain: settings.domain.clone(),
        version,
        copy,
        destination_dir,
        default_image: default_image
            .or(settings.default_image.clone())
            .or_else(|| images.get("default").cloned()),
        images,
        env: parse_env(env)?,
        for_package: false,
        yaml_images,
        service_account: None,
        raw_data_prefix: None,
        pull_check: Default::default(),
        default_registry: None,
        default_builder: settings.image_builder.clone(),
    })
}

/// The progress reporter for these flags.
pub fn progress(args: &SerializeArgs) -> Progress {
    Progress::new(if args.quiet {
        Verbosity::Quiet
    } else if args.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split_into_default_and_named() {
        let (d, n) = parse_images(&[
            "localhost:30000/img:1".into(),
            "trainer=ghcr.io/x/t:2".into(),
        ])
        .unwrap();
        assert_eq!(d.as_deref(), Some("localhost:30000/img:1"));
        assert_eq!(n["trainer"], "ghcr.io/x/t:2");
        assert!(parse_images(&["a:1".into(), "b:2".into()]).is_err());
    }
}
