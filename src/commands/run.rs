//! `union run FILE ENTITY [--INPUT VALUE ...]`: run locally, in-process, like `pyflyte run`.

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, RunArgs};
use crate::diagnostics::CliError;
use crate::discovery;
use crate::process;
use crate::python::{self, PythonSession};

use super::run_inputs::{entities_listing, find_entity, input_command, parse_inputs};

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

fn print_static_help() {
    let mut cmd = Cli::command();
    let sub = cmd
        .find_subcommand_mut("run")
        .expect("run subcommand exists");
    let mut sub = sub.clone().bin_name("union run");
    let _ = process::write_data(&format!("{}\n", sub.render_long_help()));
}
