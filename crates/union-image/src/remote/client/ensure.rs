//! Making sure images exist: the request for one spec, and [`ensure_remote_images`] over many
//! (nested bases first, identical specs once).

use std::time::Duration;

use super::context::{collect_context, context_tar_gz};
use super::{RemoteBuildError, RemoteBuildOptions, RemoteBuilderClient, RemoteImage};
use crate::build::{BuildReporter, Outcome};
use crate::dockerfile;
use crate::remote::spec_to_json;
use crate::spec::{BaseImage, ImageSpec};
use crate::TagContext;
use union_idl::union::imagebuilder::v1 as pb;

/// The build request for one spec whose nested base (if any) is already replaced by an image
/// reference. `image_name` and `spec_id` are the client's (of the spec as the user wrote it).
pub fn build_request(
    spec: &ImageSpec,
    image_name: &str,
    spec_id: &str,
    ctx: &TagContext,
    options: &RemoteBuildOptions,
) -> Result<pb::BuildRequest, RemoteBuildError> {
    let files = collect_context(spec, ctx, &options.limits)?;
    let context_tar_gz = if files.is_empty() {
        Vec::new()
    } else {
        context_tar_gz(&spec.name, &files)?
    };
    Ok(pb::BuildRequest {
        spec_json: serde_json::Value::Object(spec_to_json(spec)).to_string(),
        image_name: image_name.to_string(),
        spec_id: spec_id.to_string(),
        context_tar_gz,
        flytekit_version: options.flytekit_version.clone(),
        force: options.force || spec.is_force_push,
        default_base_image: options.default_base_image.clone().unwrap_or_default(),
    })
}

/// Make sure every spec's image exists, building what is missing on the remote builder; nested
/// base specs first. Identical specs are handled once. Returns one entry per distinct image,
/// bases included, in the order they were made sure of.
///
/// The caller should use [`RemoteImage::fully_qualified`] in the registered tasks (flytekit's
/// `_IMAGE_NAME_TO_REAL_NAME`); insert `image_name → fully_qualified` into
/// [`TagContext::real_names`] when computing names afterwards.
pub async fn ensure_remote_images(
    client: &RemoteBuilderClient,
    specs: &[ImageSpec],
    ctx: &TagContext,
    options: &RemoteBuildOptions,
    reporter: &dyn BuildReporter,
) -> Result<Vec<RemoteImage>, RemoteBuildError> {
    let mut ctx = ctx.clone();
    let mut done: Vec<RemoteImage> = Vec::new();
    for spec in specs {
        ensure_one(client, spec, &mut ctx, options, reporter, &mut done).await?;
    }
    Ok(done)
}

async fn ensure_one(
    client: &RemoteBuilderClient,
    spec: &ImageSpec,
    ctx: &mut TagContext,
    options: &RemoteBuildOptions,
    reporter: &dyn BuildReporter,
    done: &mut Vec<RemoteImage>,
) -> Result<String, RemoteBuildError> {
    // Early, local refusals: the same checks the server's planner makes.
    if spec
        .pip_secret_mounts
        .as_ref()
        .is_some_and(|m| !m.is_empty())
    {
        return Err(RemoteBuildError::Secrets {
            image: spec.name.clone(),
        });
    }
    let mut to_send = spec.clone();
    if let Some(BaseImage::Spec(inner)) = &spec.base_image {
        let base_fq = Box::pin(ensure_one(client, inner, ctx, options, reporter, done)).await?;
        to_send.base_image = Some(BaseImage::Image(base_fq));
    }
    dockerfile::check_supported(&to_send, ctx)?;
    // After the base is built, flytekit's image_name() of the base is its real (fully-qualified)
    // name, and the child's tag hashes that name: ctx.real_names carries it.
    let image_name = spec.image_name(ctx)?;
    if let Some(d) = done
        .iter()
        .find(|d| d.image_name == image_name || d.fully_qualified == image_name)
    {
        return Ok(d.fully_qualified.clone());
    }
    let spec_id = spec.id();
    reporter.started(&image_name);
    let result = make_sure(
        client,
        &to_send,
        &image_name,
        &spec_id,
        ctx,
        options,
        reporter,
    )
    .await;
    match result {
        Ok((fq, built, duration)) => {
            let outcome = if built {
                Outcome::Built {
                    pushed: true,
                    duration,
                }
            } else {
                Outcome::Exists
            };
            reporter.finished(&image_name, Ok(&outcome));
            if fq != image_name {
                ctx.real_names.insert(image_name.clone(), fq.clone());
            }
            done.push(RemoteImage {
                spec_name: spec.name.clone(),
                image_name,
                fully_qualified: fq.clone(),
                built,
            });
            Ok(fq)
        }
        Err(e) => {
            reporter.finished(&image_name, Err(&e.as_build_error(&image_name)));
            Err(e)
        }
    }
}

async fn make_sure(
    client: &RemoteBuilderClient,
    spec: &ImageSpec,
    image_name: &str,
    spec_id: &str,
    ctx: &TagContext,
    options: &RemoteBuildOptions,
    reporter: &dyn BuildReporter,
) -> Result<(String, bool, Duration), RemoteBuildError> {
    let force = options.force || spec.is_force_push;
    if !force {
        let found = client.get_image(image_name).await?;
        if found.exists {
            return Ok((found.fully_qualified_image, false, Duration::ZERO));
        }
    }
    let request = build_request(spec, image_name, spec_id, ctx, options)?;
    let result = client.build(request, reporter).await?;
    Ok((
        result.fully_qualified_image,
        result.built,
        Duration::from_secs_f64(result.duration_seconds.max(0.0)),
    ))
}
