//! `union run --remote FILE ENTITY --INPUT VALUE...`: build what is needed, upload, register,
//! create the execution, and (with `--wait`) follow it to its outputs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use prost::Message;

use crate::cli::RunArgs;
use crate::commands::common;
use crate::commands::run_inputs::{entities_listing, find_entity, parse_inputs};
use crate::diagnostics::CliError;
use crate::discovery;
use crate::entity::EntityKind;
use crate::register;
use crate::register::images::ImageOptions;
use crate::register::progress::{Progress, Verbosity};
use union_client::admin::{AdminClient, AdminError};
use union_idl::flyteidl::{admin, core};

pub fn run_remote(
    args: &RunArgs,
    file: &Path,
    entity_name: &str,
    inputs: &[String],
) -> Result<ExitCode> {
    let progress = Progress::new(if args.quiet {
        Verbosity::Quiet
    } else {
        Verbosity::Normal
    });
    let settings = common::settings(&args.backend)?;
    // pyflyte run --remote unpacks the code in the container's working directory.
    let opts = common::registration_options(
        &settings,
        &args.images,
        args.copy,
        args.version.clone(),
        ".".into(),
        &[],
    )?;
    let mut opts = opts;
    opts.pull_check = common::pull_check(&args.pull);
    let env = common::parse_env(&args.env)?;
    let exec_options = common::execution_options(&args.execution, env.clone())?;
    let set = discovery::file_module(file)?;
    let module = set.modules[0].clone();
    let root = set.root.clone();
    crate::process::set_interrupt_note("nothing was registered and no execution was started");
    let rt = common::runtime()?;
    // The backend first: a backend that is down is reported before anything slow runs.
    let client = register::connect(&rt, &settings, &progress)?;
    opts.default_registry = crate::register::images::sandbox_registry(&client);
    let mut loaded = register::load(set, &opts, &progress)?;
    let session = &loaded.session;

    // The entity and its inputs, converted exactly as for a local run (then to a LiteralMap).
    let in_module = session.entities_in_module(&root, &module)?;
    let shown = file.display().to_string();
    let entity = find_entity(&in_module, &module, entity_name).ok_or_else(|| {
        CliError::new(format!(
            "no task, workflow or launch plan named `{entity_name}` in `{shown}`"
        ))
        .detail(entities_listing(&shown, &module, &in_module))
    })?;
    let given = parse_inputs(&shown, entity_name, entity, inputs)?;
    let attr = entity
        .attr
        .clone()
        .unwrap_or_else(|| entity_name.to_string());
    let literal_map = session.remote_inputs(&module, &attr, &given)?;
    let literal_map = core::LiteralMap::decode(literal_map.as_slice()).map_err(|e| {
        CliError::new(format!("cannot decode the execution inputs: {e}"))
            .hint("this is a bug in union; please report it")
    })?;

    // Images first: nothing is uploaded or registered if an image cannot be had.
    let image_opts = ImageOptions {
        base_image: args.base_image.clone(),
        allow_unverified: args.allow_unverified_images,
        given: register::images::given_images(&opts),
        jobs: args.jobs,
    };
    register::images::ensure(&rt, &client, &mut loaded, &settings, &image_opts, &progress)?;

    let published = register::publish(
        &rt,
        &client,
        &loaded,
        &opts,
        &settings,
        register::RegisterFlags::default(),
        &progress,
    )?;
    let version = published.version.clone();

    // What to execute: a workflow through its default launch plan, a launch plan, or a task.
    let target = core::Identifier {
        resource_type: match entity.kind {
            EntityKind::Task => core::ResourceType::Task,
            _ => core::ResourceType::LaunchPlan,
        } as i32,
        project: settings.project.clone(),
        domain: settings.domain.clone(),
        name: entity.name.clone(),
        version: version.clone(),
        ..Default::default()
    };
    // Local files, directories and dataframes among the inputs go up through the data proxy.
    let mut literal_map = literal_map;
    if crate::register::local_data::has_local_data(&literal_map) {
        progress.phase("Uploading inputs");
        let n = rt.block_on(crate::register::local_data::upload_local_inputs(
            &client,
            &settings.project,
            &settings.domain,
            &mut literal_map,
        ))?;
        progress.done(&format!("{n} file{}", if n == 1 { "" } else { "s" }));
    }
    crate::process::set_interrupt_note("the entities are registered; no execution was started");
    progress.phase("Starting execution");
    // From here a signal must not leave the user guessing whether an execution runs.
    let _cooperative = crate::process::Cooperative::enter();
    crate::process::test_pause_point("starting");
    if let Some(sig) = crate::process::interrupted() {
        return Err(CliError::new(format!(
            "{}: the entities are registered; no execution was started",
            crate::process::signal_word(sig)
        ))
        .exit_code(crate::process::signal_exit_code(sig))
        .into());
    }
    let created = rt.block_on(async {
        tokio::select! {
            biased;
            sig = crate::process::interruption() => Err(sig),
            r = client.create_execution(
                &settings.project,
                &settings.domain,
                args.execution_name.as_deref(),
                target,
                literal_map,
                &exec_options,
            ) => Ok(r),
        }
    });
    let exec_id = match created {
        Err(sig) => {
            return Err(CliError::new(format!(
                "{} while starting the execution: it may or may not have started",
                crate::process::signal_word(sig)
            ))
            .hint(format!(
                "list the latest executions with `union get executions{}`",
                backend_flags(&args.backend)
            ))
            .exit_code(crate::process::signal_exit_code(sig))
            .into())
        }
        Ok(r) => r?,
    };
    progress.done(&exec_id.name);
    let mut shown = settings.clone();
    shown.org = client.org().map(str::to_string);
    crate::process::note(&format!(
        "Go to {} to see execution in the console.",
        shown.console_url(&exec_id.project, &exec_id.domain, &exec_id.name)
    ));
    if !args.wait {
        crate::process::write_data(&format!("{}\n", exec_id.name))?;
        loaded.session.finish();
        return Ok(ExitCode::SUCCESS);
    }
    crate::process::test_pause_point("following");
    let outcome = rt.block_on(follow(&client, &exec_id, &progress))?;
    match outcome {
        Outcome::Succeeded(outputs) => {
            let text = loaded
                .session
                .format_outputs(&module, &attr, &outputs.encode_to_vec())?;
            loaded.session.finish();
            crate::process::write_data(&format!("{text}\n"))?;
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Failed(d) => {
            loaded.session.finish();
            Err(d.into())
        }
        Outcome::Interrupted(sig) => {
            loaded.session.finish();
            let flags = backend_flags(&args.backend);
            Err(CliError::new(format!(
                "{}: stopped following execution {}, which goes on on {}",
                crate::process::signal_word(sig),
                exec_id.name,
                settings.endpoint
            ))
            .hint(format!(
                "follow it with `union get execution {}{flags}`",
                exec_id.name
            ))
            .hint(format!(
                "stop it with `union terminate {}{flags}`",
                exec_id.name
            ))
            .exit_code(crate::process::signal_exit_code(sig))
            .into())
        }
    }
}

/// The backend flags the user gave, to repeat in suggested commands.
fn backend_flags(b: &crate::cli::BackendArgs) -> String {
    let mut s = String::new();
    if let Some(c) = &b.config {
        s.push_str(&format!(" --config {}", c.display()));
    }
    if let Some(e) = &b.endpoint {
        s.push_str(&format!(" --endpoint {e}"));
    }
    if b.insecure {
        s.push_str(" --insecure");
    }
    if let Some(p) = &b.project {
        s.push_str(&format!(" --project {p}"));
    }
    if let Some(d) = &b.domain {
        s.push_str(&format!(" --domain {d}"));
    }
    s
}

/// How an execution ended, or why we stopped following it.
pub enum Outcome {
    Succeeded(core::LiteralMap),
    Failed(CliError),
    /// A signal arrived (its number): the execution goes on.
    Interrupted(i32),
}

fn phase_name(p: i32) -> String {
    core::workflow_execution::Phase::try_from(p)
        .map(|p| p.as_str_name().to_string())
        .unwrap_or_else(|_| p.to_string())
}

fn node_phase_name(p: i32) -> String {
    core::node_execution::Phase::try_from(p)
        .map(|p| p.as_str_name().to_string())
        .unwrap_or_else(|_| p.to_string())
}

fn terminal(p: i32) -> bool {
    use core::workflow_execution::Phase as P;
    matches!(
        P::try_from(p),
        Ok(P::Succeeded | P::Failed | P::Aborted | P::TimedOut)
    )
}

/// Why following an execution stopped short of its end.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The backend did not come back within the retry window.
    #[error("{source}")]
    GaveUp {
        what: String,
        secs: u64,
        #[source]
        source: AdminError,
    },
    #[error(transparent)]
    Admin(#[from] AdminError),
}

impl crate::diagnostics::Hint for FollowError {
    fn hints(&self) -> Vec<String> {
        match self {
            FollowError::GaveUp { what, secs, .. } => vec![format!(
                "gave up {what} after {secs}s without the backend; the execution may still be running there"
            )],
            FollowError::Admin(e) => e.hints(),
        }
    }
}

/// How long following an execution keeps retrying after losing the backend, before giving up.
const RECONNECT_WINDOW: Duration = Duration::from_secs(120);

/// Retries `call` while the backend is unreachable, for up to [`RECONNECT_WINDOW`] since the
/// first failure (tonic's channel reconnects by itself); stops early on a signal.
async fn with_retries<T, F, Fut>(
    what: &str,
    progress: &Progress,
    mut call: F,
) -> Result<std::result::Result<T, i32>, FollowError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, AdminError>>,
{
    let mut lost_since: Option<Instant> = None;
    let mut delay = Duration::from_millis(250);
    loop {
        let r = tokio::select! {
            biased;
            sig = crate::process::interruption() => return Ok(Err(sig)),
            r = call() => r,
        };
        match r {
            Ok(v) => {
                if lost_since.is_some() {
                    progress.note("  connection restored");
                }
                return Ok(Ok(v));
            }
            Err(e @ (AdminError::ConnectionLost { .. } | AdminError::Unreachable { .. })) => {
                let since = *lost_since.get_or_insert_with(|| {
                    progress.warn(&format!(
                        "{e}; retrying for up to {}s",
                        RECONNECT_WINDOW.as_secs()
                    ));
                    Instant::now()
                });
                if since.elapsed() >= RECONNECT_WINDOW {
                    return Err(FollowError::GaveUp {
                        what: what.to_string(),
                        secs: RECONNECT_WINDOW.as_secs(),
                        source: e,
                    });
                }
                tokio::select! {
                    biased;
                    sig = crate::process::interruption() => return Ok(Err(sig)),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(FollowError::Admin(e)),
        }
    }
}

/// Follow an execution until it ends, printing node transitions on stderr. A lost connection is
/// retried for a while; a signal stops following (the execution goes on).
pub async fn follow(
    client: &AdminClient,
    id: &core::WorkflowExecutionIdentifier,
    progress: &Progress,
) -> Result<Outcome, FollowError> {
    let _cooperative = crate::process::Cooperative::enter();
    let started = Instant::now();
    let mut seen: BTreeMap<String, i32> = BTreeMap::new();
    let mut delay = Duration::from_millis(100);
    let following = format!("following execution {}", id.name);
    let exec = loop {
        let exec = match with_retries(&following, progress, || client.get_execution(id)).await? {
            Ok(exec) => exec,
            Err(sig) => return Ok(Outcome::Interrupted(sig)),
        };
        if let Ok(nodes) = client.list_node_executions(id).await {
            for n in nodes {
                let node_id = n.id.as_ref().map(|i| i.node_id.clone()).unwrap_or_default();
                let phase = n.closure.as_ref().map(|c| c.phase).unwrap_or_default();
                if node_id == "start-node" || node_id == "end-node" {
                    continue;
                }
                if seen.insert(node_id.clone(), phase) != Some(phase) {
                    let name = n
                        .metadata
                        .as_ref()
                        .map(|m| m.spec_node_id.clone())
                        .unwrap_or_default();
                    let dur = n
                        .closure
                        .as_ref()
                        .and_then(|c| c.duration.as_ref())
                        .map(fmt_duration)
                        .unwrap_or_default();
                    let label = if name.is_empty() || name == node_id {
                        node_id.clone()
                    } else {
                        format!("{node_id} ({name})")
                    };
                    progress.note(&format!(
                        "  node {label}: {}{}",
                        node_phase_name(phase),
                        if dur.is_empty() {
                            String::new()
                        } else {
                            format!(" in {dur}")
                        }
                    ));
                }
            }
        }
        let phase = exec.closure.as_ref().map(|c| c.phase).unwrap_or_default();
        if terminal(phase) {
            break exec;
        }
        tokio::select! {
            biased;
            sig = crate::process::interruption() => return Ok(Outcome::Interrupted(sig)),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(1));
    };
    let closure = exec.closure.clone().unwrap_or_default();
    progress.note(&format!(
        "Execution {} {} after {:.1}s",
        id.name,
        phase_name(closure.phase).to_lowercase(),
        started.elapsed().as_secs_f64()
    ));
    use core::workflow_execution::Phase as P;
    if P::try_from(closure.phase) == Ok(P::Succeeded) {
        let data =
            match with_retries(&following, progress, || client.execution_literals(id)).await? {
                Ok(data) => data,
                Err(sig) => return Ok(Outcome::Interrupted(sig)),
            };
        return Ok(Outcome::Succeeded(data.1));
    }
    // Failure: the execution's error, and the tail of the failing node's log.
    let message = match &closure.output_result {
        Some(admin::execution_closure::OutputResult::Error(e)) => e.message.clone(),
        Some(admin::execution_closure::OutputResult::AbortMetadata(a)) => {
            format!("aborted: {}", a.cause)
        }
        _ => String::new(),
    };
    let mut d = CliError::new(format!(
        "execution {} {}",
        id.name,
        phase_name(closure.phase).to_lowercase()
    ));
    let mut detail = message;
    // The error usually carries the user's traceback already; the log tail helps when it does not.
    if !detail.contains("Traceback") {
        if let Some(tail) = failing_log_tail(client, id).await {
            detail.push_str(&format!("\n\n{tail}"));
        }
    }
    d = d.detail(detail);
    d = d.hint(format!("inspect it with `union get execution {}`", id.name));
    Ok(Outcome::Failed(d))
}

fn fmt_duration(d: &prost_types::Duration) -> String {
    let secs = d.seconds as f64 + d.nanos as f64 / 1e9;
    format!("{secs:.1}s")
}

/// The last lines of the log of the first failed node's last attempt, if the backend links one.
async fn failing_log_tail(
    client: &AdminClient,
    id: &core::WorkflowExecutionIdentifier,
) -> Option<String> {
    use core::node_execution::Phase as NP;
    let nodes = client.list_node_tree(id).await.ok()?;
    // The first failed node that has attempts of its own: inside an array, a dynamic task or a
    // subworkflow, the element or child that failed rather than its parent.
    let failed = nodes
        .iter()
        .map(|(_, n)| n)
        .filter(|n| {
            n.closure
                .as_ref()
                .map(|c| NP::try_from(c.phase) == Ok(NP::Failed))
                .unwrap_or(false)
        })
        .find(|n| !n.metadata.as_ref().is_some_and(|m| m.is_parent_node))?;
    let node_id = failed.id.clone()?;
    let attempts = client.list_task_executions(&node_id).await.ok()?;
    let last = attempts.last()?;
    let uri = last.closure.as_ref()?.logs.first()?.uri.clone();
    let text = if let Some(path) = uri.strip_prefix("file://") {
        std::fs::read_to_string(path).ok()?
    } else if uri.starts_with("http://") || uri.starts_with("https://") {
        // The sandbox's log links are on its own port, behind its authentication when that is on.
        let http = union_client::auth::http_client_for(client.tls()).ok()?;
        let mut request = http.get(&uri);
        if let Some((name, value)) = client.authorization_for(&uri) {
            request = request.header(name, value);
        }
        let response = request.send().await.ok()?.error_for_status().ok()?;
        response.text().await.ok()?
    } else {
        return None;
    };
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(20)..];
    Some(format!(
        "last lines of node {}'s log ({}):\n{}",
        node_id.node_id,
        uri,
        tail.join("\n")
    ))
}
