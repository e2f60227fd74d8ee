//! `union package PATH... -o DIR`: pyflyte-package-style .pb files plus the code archive.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::PackageArgs;
use crate::commands::common;
use crate::diagnostics::CliError;
use crate::discovery;
use crate::register::{self, PlanOptions, Spec};

pub fn package(args: PackageArgs) -> Result<ExitCode> {
    let progress = common::progress(&args.common);
    let common::ImageArgs {
        default: default_image,
        named: images,
        specs: yaml_images,
    } = common::parse_images_and_specs(&args.common.images)?;
    let opts = PlanOptions {
        project: String::new(),
        domain: String::new(),
        version: None,
        copy: common::copy_mode(args.common.copy),
        destination_dir: args.common.destination_dir.clone(),
        default_image,
        images,
        env: common::parse_env(&args.common.env)?,
        for_package: true,
        yaml_images,
        service_account: None,
        raw_data_prefix: None,
        pull_check: Default::default(),
        default_registry: None,
        default_builder: None,
    };
    let set = discovery::modules_for_paths(&args.common.paths)?;

    let out = &args.output;
    if out.exists() && !out.is_dir() {
        return Err(
            CliError::new(format!("`{}` exists and is not a directory", out.display())).into(),
        );
    }
    if out.is_dir() && !args.force {
        let existing = std::fs::read_dir(out)?.filter_map(|e| e.ok()).any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".pb") || (n.starts_with("fast") && n.ends_with(".tar.gz"))
        });
        if existing {
            return Err(
                CliError::new(format!("`{}` already holds a package", out.display()))
                    .hint("pass --force to replace it, or choose another --output")
                    .into(),
            );
        }
    }

    let loaded = register::load(set, &opts, &progress)?;
    progress.phase("Serializing");
    let entities = register::serialize(&loaded, &opts, None, None)?;
    loaded.session.finish();
    progress.done(&format!(
        "{} specs{}",
        entities.len(),
        register::processes_note(&loaded)
    ));
    if entities.is_empty() {
        return Err(CliError::new("no tasks, workflows or launch plans found").into());
    }

    std::fs::create_dir_all(out)
        .map_err(|e| CliError::new(format!("cannot create `{}`", out.display())).caused_by(e))?;
    if args.force {
        for e in std::fs::read_dir(out)?.filter_map(|e| e.ok()) {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".pb") || (n.starts_with("fast") && n.ends_with(".tar.gz")) {
                std::fs::remove_file(e.path())?;
            }
        }
    }
    // pyflyte's naming: <index zero-padded>_<name>_<1 task | 2 workflow | 3 launch plan>.pb
    let width = if entities.len() <= 1 {
        1
    } else {
        ((entities.len() as f64).log10().ceil() as usize).max(1)
    };
    for (i, e) in entities.iter().enumerate() {
        let k = match e.spec {
            Spec::Task(_) => 1,
            Spec::Workflow(_) => 2,
            Spec::LaunchPlan(_) => 3,
        };
        let name = format!("{:0width$}_{}_{}.pb", i, e.id().name, k, width = width);
        std::fs::write(out.join(&name), &e.pb)?;
        progress.item(&name, "written");
    }
    if let Some((archive, bytes)) = &loaded.archive {
        std::fs::write(out.join(&archive.file_name), bytes)?;
    }
    crate::process::write_data(&format!(
        "Packaged {} entities{} into {}\n",
        entities.len(),
        loaded
            .archive
            .as_ref()
            .map(|(a, _)| format!(" and {} ({} files)", a.file_name, a.file_count))
            .unwrap_or_default(),
        out.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}
