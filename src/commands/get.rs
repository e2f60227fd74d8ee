//! `union get executions`, `union get execution NAME`, `union terminate NAME` (`union get
//! secret` is in `secret.rs`).

use super::literal_repr::literal_text;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{GetCommand, TerminateArgs};
use crate::diagnostics::CliError;
use union_client::admin::{id_text, AdminClient};
use union_client::config::Settings;
use union_idl::flyteidl::{admin, core};

use crate::commands::common::{runtime, settings};

fn phase(p: i32) -> String {
    core::workflow_execution::Phase::try_from(p)
        .map(|p| p.as_str_name().to_string())
        .unwrap_or_else(|_| p.to_string())
}

fn node_phase(p: i32) -> String {
    core::node_execution::Phase::try_from(p)
        .map(|p| p.as_str_name().to_string())
        .unwrap_or_else(|_| p.to_string())
}

fn secs(d: Option<&prost_types::Duration>) -> String {
    d.map(|d| format!("{:.1}s", d.seconds as f64 + d.nanos as f64 / 1e9))
        .unwrap_or_else(|| "-".into())
}

fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
}

pub fn get(cmd: GetCommand) -> Result<ExitCode> {
    match cmd {
        GetCommand::Signals(a) => super::signals::list(a),
        GetCommand::Secret(a) => super::secret::get(a),
        GetCommand::Executions(a) => {
            let s = settings(&a.backend)?;
            let rt = runtime()?;
            let out = rt.block_on(async {
                let c = AdminClient::connect(&s, crate::process::login_notice()).await?;
                c.list_executions(&s.project, &s.domain, a.limit).await
            })?;
            let mut text = String::new();
            let _ = writeln!(
                text,
                "{:<24} {:<10} {:>9}  {:<28} TARGET",
                "NAME", "PHASE", "DURATION", "STARTED"
            );
            for e in out {
                let id = e.id.clone().unwrap_or_default();
                let c = e.closure.clone().unwrap_or_default();
                let target = e
                    .spec
                    .as_ref()
                    .and_then(|s| s.launch_plan.as_ref())
                    .map(id_text)
                    .unwrap_or_default();
                let _ = writeln!(
                    text,
                    "{:<24} {:<10} {:>9}  {:<28} {}",
                    id.name,
                    phase(c.phase),
                    secs(c.duration.as_ref()),
                    time(c.started_at.as_ref()),
                    target
                );
            }
            crate::process::write_data(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        GetCommand::Execution(a) => {
            let s = settings(&a.backend)?;
            let rt = runtime()?;
            let id = core::WorkflowExecutionIdentifier {
                project: s.project.clone(),
                domain: s.domain.clone(),
                name: a.name.clone(),
                ..Default::default()
            };
            let (exec, nodes, data) = rt.block_on(async {
                let c = AdminClient::connect(&s, crate::process::login_notice())
                    .await
                    .map_err(anyhow::Error::from)?;
                let exec = c
                    .get_execution(&id)
                    .await
                    .map_err(|e| not_found(e, &a.name, &s))?;
                let nodes = c.list_node_tree(&id).await.map_err(anyhow::Error::from)?;
                // Inputs and outputs, inline or fetched; a failure to read them is shown, not
                // turned into "no outputs".
                let data = c.execution_literals(&id).await.map_err(|e| {
                    let mut text = e.to_string();
                    for h in union_diagnostics::Hint::hints(&e) {
                        text.push_str(&format!(" ({h})"));
                    }
                    text
                });
                Ok::<_, anyhow::Error>((exec, nodes, data))
            })?;
            let console = s.console_url(&id.project, &id.domain, &id.name);
            crate::process::write_data(&render_execution(&exec, &nodes, &data, &console))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn not_found(e: union_client::admin::AdminError, name: &str, s: &Settings) -> anyhow::Error {
    if let union_client::admin::AdminError::Rpc {
        code: tonic::Code::NotFound,
        ..
    } = e
    {
        return CliError::new(format!("no execution named `{name}` in {}/{}", s.project, s.domain))
            .hint("list recent ones with `union get executions` (add -p/-d for another project or domain)")
            .into();
    }
    e.into()
}

fn render_execution(
    e: &admin::Execution,
    nodes: &[(usize, admin::NodeExecution)],
    data: &Result<(core::LiteralMap, core::LiteralMap), String>,
    console_url: &str,
) -> String {
    let id = e.id.clone().unwrap_or_default();
    let c = e.closure.clone().unwrap_or_default();
    let mut t = String::new();
    let _ = writeln!(t, "Execution:  {}/{}/{}", id.project, id.domain, id.name);
    let _ = writeln!(t, "Console:    {console_url}");
    if let Some(lp) = e.spec.as_ref().and_then(|s| s.launch_plan.as_ref()) {
        let _ = writeln!(t, "Target:     {}", id_text(lp));
    }
    let _ = writeln!(t, "Phase:      {}", phase(c.phase));
    let _ = writeln!(t, "Started:    {}", time(c.started_at.as_ref()));
    let _ = writeln!(t, "Duration:   {}", secs(c.duration.as_ref()));
    match data {
        Ok((inputs, outputs)) => {
            for (k, v) in &inputs.literals {
                let _ = writeln!(t, "Input:      {k} = {}", literal_text(v));
            }
            for (k, v) in &outputs.literals {
                let _ = writeln!(t, "Output:     {k} = {}", literal_text(v));
            }
        }
        Err(e) => {
            let _ = writeln!(t, "Data:       {e}");
        }
    }
    match &c.output_result {
        Some(admin::execution_closure::OutputResult::Error(err)) => {
            let _ = writeln!(
                t,
                "Error:      {}",
                err.message.trim_end().replace('\n', "\n            ")
            );
        }
        Some(admin::execution_closure::OutputResult::AbortMetadata(a)) => {
            let _ = writeln!(t, "Aborted:    {} (by {})", a.cause, a.principal);
        }
        _ => {}
    }
    let shown: Vec<&(usize, admin::NodeExecution)> = nodes
        .iter()
        .filter(|(_, n)| {
            !matches!(
                n.id.as_ref().map(|i| i.node_id.as_str()),
                Some("start-node" | "end-node")
            )
        })
        .collect();
    if !shown.is_empty() {
        let _ = writeln!(t, "Nodes:");
        for (depth, n) in shown {
            let nid = n.id.as_ref().map(|i| i.node_id.clone()).unwrap_or_default();
            let nc = n.closure.clone().unwrap_or_default();
            let indent = "  ".repeat(depth + 1);
            let child = match &nc.target_metadata {
                Some(admin::node_execution_closure::TargetMetadata::WorkflowNodeMetadata(w)) => w
                    .execution_id
                    .as_ref()
                    .map(|e| format!("  child execution {}", e.name))
                    .unwrap_or_default(),
                // As the console labels them.
                Some(admin::node_execution_closure::TargetMetadata::TaskNodeMetadata(m)) => {
                    match core::CatalogCacheStatus::try_from(m.cache_status) {
                        Ok(core::CatalogCacheStatus::CacheHit) => "  read from cache".into(),
                        Ok(core::CatalogCacheStatus::CachePopulated) => "  written to cache".into(),
                        _ => String::new(),
                    }
                }
                _ => String::new(),
            };
            let _ = writeln!(
                t,
                "{indent}{:<width$} {:<10} {:>8}{child}",
                nid,
                node_phase(nc.phase),
                secs(nc.duration.as_ref()),
                width = 20usize.saturating_sub(2 * depth).max(nid.len()),
            );
            if let Some(union_idl::flyteidl::admin::node_execution_closure::OutputResult::Error(
                err,
            )) = &nc.output_result
            {
                let first = err.message.lines().last().unwrap_or("").trim();
                let _ = writeln!(t, "{indent}  error: {first}");
            }
        }
    }
    t
}

pub fn terminate(a: TerminateArgs) -> Result<ExitCode> {
    let s = settings(&a.backend)?;
    let rt = runtime()?;
    let id = core::WorkflowExecutionIdentifier {
        project: s.project.clone(),
        domain: s.domain.clone(),
        name: a.name.clone(),
        ..Default::default()
    };
    rt.block_on(async {
        let c = AdminClient::connect(&s, crate::process::login_notice()).await?;
        c.terminate_execution(&id, &a.cause)
            .await
            .map_err(|e| not_found(e, &a.name, &s))
    })?;
    crate::process::write_data(&format!("Terminated {}\n", a.name))?;
    Ok(ExitCode::SUCCESS)
}
