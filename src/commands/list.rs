//! `union list PATH...`: what discovery finds, the way `pyflyte register` would see it.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::ListArgs;
use crate::discovery;
use crate::entity::{ContainerImage, Entity, EntityKind};
use crate::process;
use crate::python::{self, PythonSession};

pub fn list(args: ListArgs) -> Result<ExitCode> {
    let set = discovery::modules_for_paths(&args.paths)?;
    let env = python::env::locate()?;
    let session = PythonSession::start(env)?;
    let entities = session.discover(&set.root, &set.modules)?;
    session.finish();
    if args.json {
        let doc = serde_json::json!({
            "root": set.root,
            "modules": set.modules,
            "entities": entities,
        });
        process::write_data(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
    } else {
        process::write_data(&render(
            &set.root.display().to_string(),
            &set.modules,
            &entities,
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn image_text(e: &Entity) -> String {
    match &e.container_image {
        None => "default image".to_string(),
        Some(ContainerImage::Image { uri }) => uri.clone(),
        Some(ContainerImage::Spec { spec }) => {
            let name = spec
                .get("name")
                .and_then(|v| v.as_str())
                .unwrap_or("flytekit");
            format!("ImageSpec {name}")
        }
    }
}

fn render(root: &str, modules: &[crate::discovery::ModuleName], entities: &[Entity]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Project root: {root}");
    let _ = writeln!(out, "Modules: {}", modules.len());
    for kind in [
        EntityKind::Task,
        EntityKind::Workflow,
        EntityKind::LaunchPlan,
    ] {
        let of_kind: Vec<&Entity> = entities.iter().filter(|e| e.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}s ({}):", capitalize(kind.label()), of_kind.len());
        for e in of_kind {
            let inputs: Vec<String> = e
                .interface
                .inputs
                .iter()
                .map(|i| match &i.default {
                    Some(d) => format!("{}: {} = {}", i.name, i.type_text, d),
                    None => format!("{}: {}", i.name, i.type_text),
                })
                .collect();
            let outputs: Vec<String> = e
                .interface
                .outputs
                .iter()
                .map(|o| o.type_text.clone())
                .collect();
            let sig = format!("({}) -> ({})", inputs.join(", "), outputs.join(", "));
            match kind {
                EntityKind::Task => {
                    let _ = writeln!(out, "  {}{}  [{}]", e.name, sig, image_text(e));
                }
                EntityKind::LaunchPlan => {
                    let _ = writeln!(
                        out,
                        "  {}{}  -> {}",
                        e.name,
                        sig,
                        e.workflow.as_deref().unwrap_or("?")
                    );
                }
                EntityKind::Workflow => {
                    let _ = writeln!(out, "  {}{}", e.name, sig);
                }
            }
        }
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
