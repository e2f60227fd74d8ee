//! `union run FILE ENTITY [--INPUT VALUE ...]`: run locally, in-process, like `pyflyte run`.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Arg, ArgAction, CommandFactory};

use crate::cli::{Cli, RunArgs};
use crate::diagnostics::CliError;
use crate::discovery;
use crate::entity::{Entity, EntityKind, Input};
use crate::process;
use crate::python::{self, PythonSession};

pub fn run(args: RunArgs) -> Result<ExitCode> {
    // Everything after FILE: ENTITY, then its inputs. Run-level options come before FILE.
    let (entity_arg, inputs): (Option<String>, Vec<String>) = match args.rest.split_first() {
        Some((first, rest)) if !first.starts_with('-') => (Some(first.clone()), rest.to_vec()),
        _ => (None, args.rest.clone()),
    };
    let Some(file) = args.file.clone() else {
        if args.help {
            print_static_help();
            return Ok(ExitCode::SUCCESS);
        }
        return Err(CliError::usage("`union run` needs a Python file")
            .hint("usage: union run FILE ENTITY [--INPUT VALUE ...]; see `union run --help`")
            .into());
    };

    if args.remote && !(args.help || inputs.iter().any(|a| a == "--help" || a == "-h")) {
        if let Some(entity_name) = &entity_arg {
            return super::run_remote::run_remote(&args, &file, entity_name, &inputs);
        }
    }

    // Everything that needs no Python first: the file and its module name.
    let set = discovery::file_module(&file)?;
    let module = set.modules[0].clone();

    let env = python::env::locate()?;
    let session = PythonSession::start(env)?;
    let entities = session.entities_in_module(&set.root, &module)?;

    let wants_help = args.help || inputs.iter().any(|a| a == "--help" || a == "-h");
    let Some(entity_name) = entity_arg.clone() else {
        if args.help {
            process::write_data(&entities_listing(
                &file.display().to_string(),
                &module,
                &entities,
            ))?;
            session.finish();
            return Ok(ExitCode::SUCCESS);
        }
        return Err(
            CliError::usage(format!("which entity in `{}` should run?", file.display()))
                .detail(entities_listing(
                    &file.display().to_string(),
                    &module,
                    &entities,
                ))
                .hint(format!(
                    "usage: union run {} ENTITY [--INPUT VALUE ...]",
                    file.display()
                ))
                .into(),
        );
    };

    let entity = find_entity(&entities, &module, &entity_name).ok_or_else(|| {
        let mut d = CliError::new(format!(
            "no task, workflow or launch plan named `{entity_name}` in `{}`",
            file.display()
        ));
        if entities.is_empty() {
            d = d.hint("the file defines no @task, @workflow or LaunchPlan at top level");
        } else {
            d = d.detail(entities_listing(
                &file.display().to_string(),
                &module,
                &entities,
            ));
        }
        d
    })?;

    if wants_help {
        let mut cmd = input_command(&file.display().to_string(), &entity_name, entity);
        process::write_data(&format!("{}\n", cmd.render_long_help()))?;
        session.finish();
        return Ok(ExitCode::SUCCESS);
    }
    let given = parse_inputs(&file.display().to_string(), &entity_name, entity, &inputs)?;

    let attr = entity.attr.clone().unwrap_or(entity_name.clone());
    let result = session.run(&module, &attr, &given);
    session.finish();
    match result {
        Ok(text) => {
            process::write_data(&format!("{text}\n"))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e.into()),
    }
}

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

fn print_static_help() {
    let mut cmd = Cli::command();
    let sub = cmd
        .find_subcommand_mut("run")
        .expect("run subcommand exists");
    let mut sub = sub.clone().bin_name("union run");
    let _ = process::write_data(&format!("{}\n", sub.render_long_help()));
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
fn input_command(file: &str, entity_name: &str, entity: &Entity) -> clap::Command {
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
