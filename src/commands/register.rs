//! `union register PATH...`: load, package, (build images), upload, register.

use std::process::ExitCode;

use anyhow::Result;

use crate::admin::{id_text, AdminClient};
use crate::cli::RegisterArgs;
use crate::commands::common;
use crate::config::{self, Overrides};
use crate::diagnostics::Diagnostic;
use crate::discovery;
use crate::register::images::{self, ImageOptions};
use crate::register::{self, upload, PlanOptions};

pub fn register(args: RegisterArgs) -> Result<ExitCode> {
    let progress = common::progress(&args.common);
    let settings = config::load(&Overrides {
        config: args.backend.config.clone(),
        endpoint: args.backend.endpoint.clone(),
        insecure: args.backend.insecure.then_some(true),
        project: args.backend.project.clone(),
        domain: args.backend.domain.clone(),
    })?;
    let (default_image, mut images, yaml_images) =
        common::parse_images_and_specs(&args.common.images)?;
    for (k, v) in &settings.images {
        images.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let copy = common::copy_mode(args.common.copy);
    if copy == crate::package::CopyMode::None && args.version.is_none() {
        return Err(Diagnostic::usage("--copy none needs an explicit --version")
            .hint("without a code archive the version cannot be derived from the code; pass --version")
            .into());
    }
    let opts = PlanOptions {
        project: settings.project.clone(),
        domain: settings.domain.clone(),
        version: args.version.clone(),
        copy,
        destination_dir: args.common.destination_dir.clone(),
        default_image: default_image
            .or(settings.default_image.clone())
            .or_else(|| images.get("default").cloned()),
        images,
        env: common::parse_env(&args.common.env)?,
        for_package: false,
        yaml_images,
    };
    let image_opts = ImageOptions {
        base_image: args.common.base_image.clone(),
        allow_unverified: args.common.allow_unverified_images,
    };
    let set = discovery::modules_for_paths(&args.common.paths)?;
    let mut loaded = register::load(set, &opts, &progress)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Diagnostic::new(format!("cannot start the async runtime: {e}")))?;

    if args.dry_run {
        progress.phase("Serializing");
        let (entities, version) = register::serialize_for_registration(&loaded, &opts, None)?;
        loaded.session.finish();
        progress.done(&format!("{} specs, version {version}", entities.len()));
        let mut out = String::new();
        out.push_str(&format!(
            "Dry run: nothing uploaded, nothing registered.\nTarget: {} (set by {}), project {}, domain {}\nVersion: {version}\n",
            settings.endpoint, settings.endpoint_source, settings.project, settings.domain
        ));
        match &loaded.archive {
            Some((a, _)) => out.push_str(&format!(
                "Code archive: {} ({} files, {} compressed, {} uncompressed)\n",
                a.file_name,
                a.file_count,
                register::human_bytes(a.compressed_size),
                register::human_bytes(a.uncompressed_size)
            )),
            None => out.push_str("Code archive: none (--copy none)\n"),
        }
        out.push_str(&format!("Images ({}):\n", loaded.images.len()));
        out.push_str(&images::describe(&rt, &loaded, &settings, &image_opts)?);
        out.push_str(&format!("Entities ({}):\n", entities.len()));
        for e in &entities {
            out.push_str(&format!("  {:<11} {}\n", e.kind(), id_text(&e.id())));
        }
        crate::process::write_data(&out)?;
        return Ok(ExitCode::SUCCESS);
    }

    // Images before any RPC: nothing is registered if one cannot be built or pushed.
    images::ensure_images(&rt, &mut loaded, &settings, &image_opts, &progress)?;

    progress.phase(&format!("Connecting to {}", settings.endpoint));
    let client = rt
        .block_on(AdminClient::connect(&settings))
        .map_err(register::admin_diagnostic)?;
    progress.done("ok");

    let location = match &loaded.archive {
        Some((archive, bytes)) => {
            progress.phase("Uploading code");
            let url = rt.block_on(upload::upload_archive(
                &client,
                &settings.project,
                &settings.domain,
                archive,
                bytes.clone(),
            ))?;
            progress.done(&format!(
                "{} ({})",
                url,
                register::human_bytes(archive.compressed_size)
            ));
            Some(url)
        }
        None => None,
    };

    progress.phase("Serializing");
    let (entities, version) =
        register::serialize_for_registration(&loaded, &opts, location.as_deref())?;
    loaded.session.finish();
    progress.done(&format!("{} specs, version {version}", entities.len()));

    let result = rt.block_on(register::register_entities(
        &client,
        &entities,
        args.activate_launchplans,
        args.skip_errors,
        &progress,
    ))?;
    crate::process::write_data(&format!(
        "Registered {} entities with version {version} in {}/{} ({} new, {} already registered{})\n",
        entities.len() - result.failed.len(),
        settings.project,
        settings.domain,
        result.new,
        result.existed,
        if result.failed.is_empty() { String::new() } else { format!(", {} failed", result.failed.len()) }
    ))?;
    Ok(if result.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
