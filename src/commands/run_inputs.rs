//! Choosing an entity in a file and reading its inputs from the command line, as pyflyte does:
//! shared by local runs (`run.rs`) and remote ones (`run_remote.rs`).

use std::fmt::Write as _;

use clap::{Arg, ArgAction};

use crate::diagnostics::CliError;
use crate::entity::{Entity, EntityKind, Input};

/// Parse `--INPUT VALUE` flags for `entity` into raw values (text, or bools for switches), and
/// refuse missing required inputs. Conversion to Python values is flytekit's job.
pub(crate) fn parse_inputs(
    file: &str,
    entity_name: &str,
    entity: &Entity,
    inputs: &[String],
) -> Result<serde_json::Map<String, serde_json::Value>, CliError> {
    let cmd = input_command(file, entity_name, entity);
    let matches = match cmd.try_get_matches_from(inputs.iter()) {
        Ok(m) => m,
        Err(e) => {
            let text = e.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            let mut d = CliError::usage(first);
            for tip in text.lines().filter_map(|l| l.trim().strip_prefix("tip: ")) {
                d = d.hint(tip.to_string());
            }
            return Err(d.hint(format!(
                "see `union run {file} {entity_name} --help` for its inputs"
            )));
        }
    };
    let mut given = serde_json::Map::new();
    let mut missing: Vec<&Input> = Vec::new();
    for input in &entity.interface.inputs {
        if input.is_bool {
            if matches.get_flag(&input.name) {
                given.insert(input.name.clone(), serde_json::Value::Bool(true));
            } else if matches.get_flag(&no_id(&input.name)) {
                given.insert(input.name.clone(), serde_json::Value::Bool(false));
            }
        } else if let Some(v) = matches.get_one::<String>(&input.name) {
            given.insert(input.name.clone(), serde_json::Value::String(v.clone()));
        } else if input.required {
            missing.push(input);
        }
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing
            .iter()
            .map(|i| format!("--{} ({})", i.name, i.type_text))
            .collect();
        let example: Vec<String> = missing
            .iter()
            .map(|i| format!("--{} VALUE", i.name))
            .collect();
        return Err(CliError::usage(format!(
            "missing required input{} for {} `{}`: {}",
            if missing.len() > 1 { "s" } else { "" },
            entity.kind.label(),
            entity_name,
            list.join(", ")
        ))
        .hint(format!(
            "union run {file} {entity_name} {}",
            example.join(" ")
        )));
    }
    Ok(given)
}

/// Find ENTITY in what the module defines: by attribute name, launch-plan name or full name.
pub(crate) fn find_entity<'a>(
    entities: &'a [Entity],
    module: &crate::discovery::ModuleName,
    name: &str,
) -> Option<&'a Entity> {
    entities
        .iter()
        .find(|e| e.attr.as_deref() == Some(name))
        .or_else(|| {
            entities
                .iter()
                .find(|e| e.kind == EntityKind::LaunchPlan && e.name == name)
        })
        .or_else(|| {
            entities.iter().find(|e| {
                e.name == name || format!("{module}.{}", e.attr.as_deref().unwrap_or("")) == name
            })
        })
}

pub(crate) fn entities_listing(
    file: &str,
    module: &crate::discovery::ModuleName,
    entities: &[Entity],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Entities in {file} (module {module}):");
    if entities.is_empty() {
        let _ = writeln!(
            out,
            "  (none: no @task, @workflow or LaunchPlan at top level)"
        );
    }
    let width = entities
        .iter()
        .map(|e| display_name(e).len())
        .max()
        .unwrap_or(0);
    for kind in [
        EntityKind::Workflow,
        EntityKind::Task,
        EntityKind::LaunchPlan,
    ] {
        for e in entities.iter().filter(|e| e.kind == kind) {
            let name = display_name(e);
            let doc = e
                .doc
                .as_deref()
                .and_then(|d| d.lines().next())
                .unwrap_or("");
            let line = format!(
                "  {:<width$}  {:<11}  {}",
                name,
                e.kind.label(),
                doc,
                width = width
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    let _ = writeln!(
        out,
        "\nRun one with: union run {file} ENTITY [--INPUT VALUE ...]"
    );
    out
}

fn display_name(e: &Entity) -> String {
    match e.kind {
        EntityKind::LaunchPlan => e.name.clone(),
        _ => e.attr.clone().unwrap_or_else(|| e.name.clone()),
    }
}

fn no_id(name: &str) -> String {
    format!("no_{name}")
}

/// The per-entity command line: one flag per input, spelled as pyflyte spells it.
pub(crate) fn input_command(file: &str, entity_name: &str, entity: &Entity) -> clap::Command {
    let mut about = format!("{} {}", entity.kind.label(), entity.name);
    if let Some(doc) = &entity.doc {
        about.push_str(&format!("\n\n{doc}"));
    }
    let mut cmd = clap::Command::new(entity_name.to_string())
        .bin_name(format!("union run {file} {entity_name}"))
        .no_binary_name(true)
        .disable_version_flag(true)
        .about(about)
        .next_help_heading("Inputs");
    for input in &entity.interface.inputs {
        let mut help = String::new();
        if !input.description.is_empty() && input.description != input.name {
            help.push_str(&input.description);
            help.push(' ');
        }
        help.push_str(&format!("[type: {}]", input.type_text));
        if let Some(d) = &input.default {
            help.push_str(&format!(" [default: {d}]"));
        }
        if input.required {
            help.push_str(" [required]");
        }
        if input.is_bool {
            let dashed = input.name.replace('_', "-");
            let mut no = Arg::new(no_id(&input.name))
                .long(format!("no_{}", input.name))
                .action(ArgAction::SetTrue)
                .conflicts_with(input.name.clone())
                .help(format!("Set {} to false", input.name));
            if dashed != input.name {
                no = no.alias(format!("no-{dashed}"));
            } else {
                no = no.visible_alias(format!("no-{dashed}"));
            }
            cmd = cmd
                .arg(
                    Arg::new(input.name.clone())
                        .long(input.name.clone())
                        .action(ArgAction::SetTrue)
                        .help(help),
                )
                .arg(no);
        } else {
            cmd = cmd.arg(
                Arg::new(input.name.clone())
                    .long(input.name.clone())
                    .value_name(input.type_text.clone())
                    .allow_hyphen_values(true)
                    .action(ArgAction::Set)
                    .help(help),
            );
        }
    }
    cmd
}
