//! `union register PATH...`: load, package, (build images), upload, register.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::RegisterArgs;
use crate::commands::common;
use crate::discovery;
use crate::register;
use crate::register::images::{self, ImageOptions};
use union_client::admin::id_text;

pub fn register(args: RegisterArgs) -> Result<ExitCode> {
    let progress = common::progress(&args.common);
    let settings = common::settings(&args.backend)?;
    let mut opts = common::registration_options(
        &settings,
        &args.common.images,
        args.common.copy,
        args.version.clone(),
        args.common.destination_dir.clone(),
        &args.common.env,
    )?;
    opts.service_account = args.service_account.clone().filter(|s| !s.is_empty());
    opts.raw_data_prefix = args.raw_data_prefix.clone().filter(|s| !s.is_empty());
    opts.pull_check = common::pull_check(&args.pull);
    let image_opts = ImageOptions {
        base_image: args.common.base_image.clone(),
        allow_unverified: args.common.allow_unverified_images,
        given: register::images::given_images(&opts),
        jobs: args.jobs,
    };
    let set = discovery::modules_for_paths(&args.common.paths)?;
    crate::process::set_interrupt_note("nothing was registered");
    let rt = common::runtime()?;
    // The backend first: a backend that is down is reported before anything slow runs.
    let client = if args.dry_run {
        None
    } else {
        Some(register::connect(&rt, &settings, &progress)?)
    };
    opts.default_registry = client.as_ref().and_then(images::sandbox_registry);
    let mut loaded = register::load(set, &opts, &progress)?;

    let Some(client) = client else {
        progress.phase("Serializing");
        let (entities, version) = register::serialize_for_registration(&loaded, &opts, None)?;
        loaded.session.finish();
        progress.done(&format!(
            "{} specs{}, version {version}",
            entities.len(),
            register::processes_note(&loaded)
        ));
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
                union_diagnostics::human_bytes(a.compressed_size),
                union_diagnostics::human_bytes(a.uncompressed_size)
            )),
            None => out.push_str("Code archive: none (--copy none)\n"),
        }
        out.push_str(&format!("Images ({}):\n", loaded.images.len()));
        let plan = images::plan(&loaded, &image_opts, &settings)?;
        let users = |image: &str| {
            loaded
                .images
                .iter()
                .find(|i| i.name == image)
                .map(|i| i.tasks.clone())
                .unwrap_or_default()
        };
        out.push_str(&images::describe(&rt, &plan, &users));
        out.push_str(&format!("Entities ({}):\n", entities.len()));
        for e in &entities {
            out.push_str(&format!("  {:<11} {}\n", e.kind(), id_text(&e.id())));
        }
        crate::process::write_data(&out)?;
        return Ok(ExitCode::SUCCESS);
    };

    // Images before any RPC that registers: nothing is registered if one cannot be built or pushed.
    images::ensure(&rt, &client, &mut loaded, &settings, &image_opts, &progress)?;

    let published = register::publish(
        &rt,
        &client,
        &loaded,
        &opts,
        &settings,
        register::RegisterFlags {
            activate_all: args.activate_launchplans,
            skip_errors: args.skip_errors,
        },
        &progress,
    )?;
    loaded.session.finish();
    let (entities, version, result) = (
        &published.entities,
        &published.version,
        &published.registered,
    );
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
