//! The field combinations union's builder cannot honour, refused before any build.

use std::path::{Component, Path};

use super::inputs::{non_empty, requirements_kind, resolve};
use super::PlanError;
use crate::spec::{BaseImage, ImageSpec};
use crate::tag::TagContext;

/// Refuse, before any build, the combinations union's builder cannot honour (naming the field).
pub fn check_supported(spec: &ImageSpec, ctx: &TagContext) -> Result<(), PlanError> {
    requirements_kind(spec, ctx).map(|_| ())?;
    check_installers(spec)?;
    check_copy_entries(spec, ctx)?;
    check_files(spec, ctx)?;
    check_env(spec)?;
    if let Some(BaseImage::Spec(inner)) = &spec.base_image {
        check_supported(inner, ctx)?;
    }
    Ok(())
}

fn invalid(spec: &ImageSpec, message: String) -> PlanError {
    PlanError::Invalid {
        image: spec.name.clone(),
        message,
    }
}

fn missing(spec: &ImageSpec, ctx: &TagContext, field: &'static str, path: &str) -> PlanError {
    PlanError::MissingFile {
        image: spec.name.clone(),
        field,
        path: path.to_string(),
        base: ctx.base_dir.clone(),
    }
}

/// CUDA, cuDNN and conda: the builder installs with apt and uv only.
fn check_installers(spec: &ImageSpec) -> Result<(), PlanError> {
    let unsupported = |field: &'static str, reason: &str| PlanError::Unsupported {
        image: spec.name.clone(),
        field,
        reason: reason.to_string(),
    };
    if spec.cuda.is_some() {
        return Err(unsupported(
            "cuda",
            "it cannot install CUDA; use a base_image that ships CUDA and remove `cuda`",
        ));
    }
    if spec.cudnn.is_some() {
        return Err(unsupported(
            "cudnn",
            "it cannot install cuDNN; use a base_image that ships cuDNN and remove `cudnn`",
        ));
    }
    if non_empty(&spec.conda_packages) {
        return Err(unsupported(
            "conda_packages",
            "it installs Python packages with uv, without micromamba/conda; use `packages` or apt_packages",
        ));
    }
    if non_empty(&spec.conda_channels) {
        return Err(unsupported(
            "conda_channels",
            "it installs Python packages with uv, without micromamba/conda",
        ));
    }
    Ok(())
}

fn check_copy_entries(spec: &ImageSpec, ctx: &TagContext) -> Result<(), PlanError> {
    for entry in spec.copy.iter().flatten() {
        let p = Path::new(entry);
        if p.is_absolute() {
            return Err(invalid(
                spec,
                format!(
                    "copy entry '{entry}' is an absolute path; `copy` takes paths relative to the working \
                     directory, copied to the same path under /root"
                ),
            ));
        }
        if p.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(invalid(
                spec,
                format!(
                    "copy entry '{entry}' contains `..`; `copy` paths must stay inside the working directory"
                ),
            ));
        }
        if !resolve(&ctx.base_dir, entry).exists() {
            return Err(missing(spec, ctx, "copy", entry));
        }
    }
    Ok(())
}

/// `registry_config` and `pip_secret_mounts`: files that must exist, mounted at usable paths.
fn check_files(spec: &ImageSpec, ctx: &TagContext) -> Result<(), PlanError> {
    if let Some(config) = spec.registry_config.as_deref().filter(|p| !p.is_empty()) {
        if !resolve(&ctx.base_dir, config).is_file() {
            return Err(missing(spec, ctx, "registry_config", config));
        }
    }
    for (i, (src, target)) in spec.pip_secret_mounts.iter().flatten().enumerate() {
        if !resolve(&ctx.base_dir, src).is_file() {
            return Err(missing(spec, ctx, "pip_secret_mounts", src));
        }
        // The target goes into a `--mount=type=secret,...` option list unquoted.
        if target.is_empty() || target.contains([',', '"', '\n', '\r', ' ']) {
            return Err(invalid(
                spec,
                format!(
                    "pip_secret_mounts entry {i}: mount path '{target}' must be a path without commas, \
                     quotes or spaces"
                ),
            ));
        }
    }
    Ok(())
}

/// Names and values a Dockerfile `ENV` line can carry.
fn check_env(spec: &ImageSpec) -> Result<(), PlanError> {
    for (key, value) in spec.env.iter().flatten() {
        if key.is_empty() || key.contains(|c: char| c == '=' || c.is_whitespace() || c == '"') {
            return Err(invalid(
                spec,
                format!("env name {key:?} cannot be an environment variable name in an image"),
            ));
        }
        if value.contains(['\n', '\r']) {
            return Err(invalid(
                spec,
                format!(
                    "env value of `{key}` contains a line break, which a Dockerfile ENV cannot hold"
                ),
            ));
        }
    }
    Ok(())
}
