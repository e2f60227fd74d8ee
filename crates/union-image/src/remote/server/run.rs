//! One build request carried out: the spec checked, the received files pointed at, the plan made
//! with the local builder's Dockerfile generation, then built and pushed with this server's engine.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::job::{Job, JobReporter};
use super::unpack::extract_context;
use super::Inner;
use crate::build::{BuildError, Builder};
use crate::dockerfile::{self, BuildSettings, PlanError};
use crate::remote::{CONTEXT_COPY, CONTEXT_REQUIREMENTS, CONTEXT_SRC};
use crate::spec::{BaseImage, CopyFileDetection, ImageSpec};
use crate::{HostEnv, TagContext};
use union_idl::union::imagebuilder::v1 as pb;

use pb::build_failure::Kind;

/// Removes a temporary context directory when the build ends or is aborted.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn failure(kind: Kind, image: &str, message: impl Into<String>) -> pb::BuildFailure {
    pb::BuildFailure {
        kind: kind as i32,
        message: message.into(),
        step: String::new(),
        output: String::new(),
        image: image.to_string(),
    }
}

fn build_failure(image: &str, e: BuildError) -> pb::BuildFailure {
    match e {
        BuildError::StepFailed {
            step,
            message,
            output,
            ..
        } => pb::BuildFailure {
            kind: Kind::StepFailed as i32,
            message,
            step,
            output,
            image: image.to_string(),
        },
        BuildError::Push { message, .. } => failure(Kind::PushFailed, image, message),
        e @ BuildError::Unreachable { .. } => failure(Kind::Unavailable, image, e.to_string()),
        e @ BuildError::Context { .. } => failure(Kind::InvalidContext, image, e.to_string()),
        BuildError::Build { message, .. } => failure(Kind::BuildFailed, image, message),
        e => failure(Kind::BuildFailed, image, e.to_string()),
    }
}

/// Check, plan, build and push; the result or the failure to stream last.
pub(super) async fn run_build(
    inner: &Inner,
    engine: &Builder,
    job: &Job,
    req: pb::BuildRequest,
) -> Result<(String, bool), pb::BuildFailure> {
    let fq = job.image.as_str();
    let spec = parse_spec(&req, fq)?;
    if !req.force && !spec.is_force_push {
        job.note(format!("checking whether {fq} exists"));
        match inner.exists(fq).await {
            Ok(true) => {
                job.note(format!("{fq} exists; nothing to build"));
                return Ok((fq.to_string(), false));
            }
            Ok(false) => {}
            Err(e) => {
                return Err(failure(
                    Kind::Unavailable,
                    fq,
                    format!("cannot tell whether {fq} exists: {e}"),
                ))
            }
        }
    }

    let dir = inner
        .settings
        .data_dir
        .join("image-contexts")
        .join(format!("{:016x}", random_u64()));
    let _cleanup = TempDir(dir.clone());
    let files = extract_context(&req.context_tar_gz, &dir, &inner.settings.limits)
        .map_err(|m| failure(Kind::InvalidContext, fq, m))?;
    let (mut spec, ctx) = relocate(spec, &dir, &files, fq)?;
    // A client's credentials file stays with the client: this server pushes with its own.
    spec.registry_config = None;
    let settings = BuildSettings {
        default_base_image: if req.default_base_image.trim().is_empty() {
            inner.settings.default_base_image.clone()
        } else {
            req.default_base_image.trim().to_string()
        },
        flytekit_version: req.flytekit_version.clone(),
    };
    let mut plan = dockerfile::plan(&spec, &ctx, &settings).map_err(|e| plan_failure(fq, e))?;
    // The client's name and id: its tag hashes its files (in its directory order), and the id is
    // the one its ImageSpec computes at run time.
    plan.image_name = fq.to_string();
    plan.push = true;
    plan.base = None;
    if !req.spec_id.is_empty() {
        let df = replace_image_id(&plan.dockerfile, &req.spec_id);
        plan.context.add_bytes("Dockerfile", df.clone(), 0o644);
        plan.dockerfile = df;
    }

    let record = inner.records.start(fq, &spec.name);
    job.lock().record = Some(record);
    job.note(format!("building {fq} (platform {})", plan.platform));
    let reporter = JobReporter(job);
    engine
        .build(&plan, &reporter)
        .await
        .map_err(|e| build_failure(fq, e))?;
    job.note(format!("pushing {fq}"));
    engine
        .push(&plan, &reporter)
        .await
        .map_err(|e| build_failure(fq, e))?;
    Ok((fq.to_string(), true))
}

fn plan_failure(image: &str, e: PlanError) -> pb::BuildFailure {
    failure(Kind::InvalidSpec, image, e.to_string())
}

fn parse_spec(req: &pb::BuildRequest, fq: &str) -> Result<ImageSpec, pb::BuildFailure> {
    let invalid = |m: String| failure(Kind::InvalidSpec, fq, m);
    let value: serde_json::Value = serde_json::from_str(&req.spec_json)
        .map_err(|e| invalid(format!("spec_json is not JSON: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(invalid(
            "spec_json must be a JSON object of ImageSpec fields".into(),
        ));
    };
    let spec = ImageSpec::from_bridge_json(&map, &HostEnv::current())
        .map_err(|e| invalid(e.to_string()))?;
    if matches!(spec.base_image, Some(BaseImage::Spec(_))) {
        return Err(invalid(format!(
            "ImageSpec '{}': build the nested base ImageSpec first and send its image reference as base_image",
            spec.name
        )));
    }
    if spec
        .pip_secret_mounts
        .as_ref()
        .is_some_and(|m| !m.is_empty())
    {
        return Err(invalid(format!(
            "ImageSpec '{}' has pip_secret_mounts; the remote builder does not accept secrets",
            spec.name
        )));
    }
    // The name must be this spec's: `[registry/]name:tag`.
    let prefix = match spec.registry.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => format!("{r}/{}:", spec.name),
        None => format!("{}:", spec.name),
    };
    let name = req.image_name.trim();
    let tag = name.strip_prefix(&prefix).unwrap_or_default();
    if tag.is_empty() || tag.contains(['/', ':', '@']) {
        return Err(invalid(format!(
            "image_name `{name}` is not `{prefix}<tag>` (ImageSpec '{}', registry {:?})",
            spec.name, spec.registry
        )));
    }
    if !req.spec_id.is_empty()
        && !req
            .spec_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(format!(
            "spec_id `{}` is not an ImageSpec id",
            req.spec_id
        )));
    }
    Ok(spec)
}

/// Point the spec's path fields at the received files.
fn relocate(
    mut spec: ImageSpec,
    dir: &Path,
    files: &[String],
    fq: &str,
) -> Result<(ImageSpec, TagContext), pb::BuildFailure> {
    let invalid = |m: String| failure(Kind::InvalidSpec, fq, m);
    if let Some(req) = spec.requirements.clone().filter(|r| !r.is_empty()) {
        let name = Path::new(&req)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("requirements.txt")
            .to_string();
        let at = dir.join(CONTEXT_REQUIREMENTS).join(&name);
        if !at.is_file() {
            return Err(invalid(format!(
                "ImageSpec '{}': requirements file `{req}` was not sent (expected `{CONTEXT_REQUIREMENTS}/{name}` in the context)",
                spec.name
            )));
        }
        spec.requirements = Some(at.to_string_lossy().into_owned());
    }
    let mut loaded = Vec::new();
    if spec
        .source_copy_mode
        .is_some_and(|m| m != CopyFileDetection::NoCopy)
    {
        // The client selected the files (ignore rules, loaded modules); take them all as they
        // are. LOADED_MODULES over the received list copies exactly those.
        let src = dir.join(CONTEXT_SRC);
        spec.source_root = Some(src.to_string_lossy().into_owned());
        spec.source_copy_mode = Some(CopyFileDetection::LoadedModules);
        let prefix = format!("{CONTEXT_SRC}/");
        loaded = files
            .iter()
            .filter_map(|f| f.strip_prefix(&prefix))
            .map(|rel| src.join(rel))
            .collect();
    }
    let mut ctx = TagContext::new(dir.join(CONTEXT_COPY));
    ctx.loaded_modules = loaded;
    Ok((spec, ctx))
}

/// The Dockerfile with its `ENV _F_IMG_ID=` line carrying `id`.
fn replace_image_id(dockerfile: &str, id: &str) -> String {
    let mut out = String::with_capacity(dockerfile.len());
    for line in dockerfile.lines() {
        if line.starts_with("ENV _F_IMG_ID=") {
            out.push_str("ENV _F_IMG_ID=");
            out.push_str(id);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_id_line_is_replaced() {
        let df = "FROM x\nENV _F_IMG_ID=abc\n";
        assert_eq!(replace_image_id(df, "Z-9_"), "FROM x\nENV _F_IMG_ID=Z-9_\n");
    }
}
