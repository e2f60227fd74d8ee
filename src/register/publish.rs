//! Publishing: upload the code archive, serialize with its location, register every entity
//! (tasks, then workflows and launch plans in dependency layers), activate launch plans.

use std::collections::BTreeSet;

use union_client::admin::{id_text, AdminClient, AdminError, Created};
use union_diagnostics::human_bytes;
use union_idl::flyteidl::{admin, core};

use super::serialize::serialize_for_registration;
use super::{upload, Loaded, PlanOptions, PlannedEntity, Progress, RegisterError, Spec};

/// Entity ids referenced by a workflow's nodes, by kind (tasks, launch plans, subworkflows).
fn node_refs(wf: &admin::WorkflowSpec) -> (BTreeSet<String>, BTreeSet<String>) {
    fn walk(n: &core::Node, lps: &mut BTreeSet<String>, wfs: &mut BTreeSet<String>) {
        use core::node::Target;
        use core::workflow_node::Reference;
        match &n.target {
            Some(Target::WorkflowNode(w)) => match &w.reference {
                Some(Reference::LaunchplanRef(id)) => {
                    lps.insert(id_text(id));
                }
                Some(Reference::SubWorkflowRef(id)) => {
                    wfs.insert(id_text(id));
                }
                None => {}
            },
            Some(Target::BranchNode(b)) => {
                if let Some(ie) = &b.if_else {
                    let mut all: Vec<&core::Node> = Vec::new();
                    if let Some(c) = &ie.case {
                        if let Some(n) = &c.then_node {
                            all.push(n);
                        }
                    }
                    for c in &ie.other {
                        if let Some(n) = &c.then_node {
                            all.push(n);
                        }
                    }
                    if let Some(core::if_else_block::Default::ElseNode(n)) = &ie.default {
                        all.push(n);
                    }
                    for n in all {
                        walk(n, lps, wfs);
                    }
                }
            }
            Some(Target::ArrayNode(a)) => {
                if let Some(n) = &a.node {
                    walk(n, lps, wfs);
                }
            }
            _ => {}
        }
    }
    let mut lps = BTreeSet::new();
    let mut wfs = BTreeSet::new();
    for t in wf.template.iter().chain(wf.sub_workflows.iter()) {
        for n in &t.nodes {
            walk(n, &mut lps, &mut wfs);
        }
    }
    (lps, wfs)
}

/// Workflows and launch plans grouped into layers: each layer only depends on earlier ones.
pub fn dependency_layers(entities: &[PlannedEntity]) -> Vec<Vec<usize>> {
    let mut deps: Vec<BTreeSet<String>> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut idx: Vec<usize> = Vec::new();
    for (i, e) in entities.iter().enumerate() {
        let d = match &e.spec {
            Spec::Task(_) => continue,
            Spec::Workflow(w) => node_refs(w).0,
            Spec::LaunchPlan(lp) => lp
                .spec
                .as_ref()
                .and_then(|s| s.workflow_id.as_ref())
                .map(|id| BTreeSet::from([format!("wf:{}", id_text(id))]))
                .unwrap_or_default(),
        };
        let key = match &e.spec {
            Spec::Workflow(_) => format!("wf:{}", id_text(&e.id())),
            _ => id_text(&e.id()),
        };
        deps.push(d);
        ids.push(key);
        idx.push(i);
    }
    let known: BTreeSet<String> = ids.iter().cloned().collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut remaining: Vec<usize> = (0..ids.len()).collect();
    let mut layers = Vec::new();
    while !remaining.is_empty() {
        let (ready, rest): (Vec<usize>, Vec<usize>) = remaining.iter().partition(|&&k| {
            deps[k]
                .iter()
                .all(|d| done.contains(d) || !known.contains(d))
        });
        if ready.is_empty() {
            // A cycle cannot be registered in any order; keep flytekit's order for the rest.
            layers.push(rest.iter().map(|&k| idx[k]).collect());
            break;
        }
        for &k in &ready {
            done.insert(ids[k].clone());
        }
        layers.push(ready.iter().map(|&k| idx[k]).collect());
        remaining = rest;
    }
    layers
}

/// Counts of what registration did.
#[derive(Debug, Default, Clone)]
pub struct Registered {
    pub new: usize,
    pub existed: usize,
    pub failed: Vec<String>,
    pub activated: usize,
}

/// How registration treats launch plans and failures (`register`'s flags; `run --remote`
/// uses the defaults).
#[derive(Debug, Clone, Copy, Default)]
pub struct RegisterFlags {
    /// Activate every launch plan, not only those flytekit marks for activation.
    pub activate_all: bool,
    /// Go on past an entity the backend refuses, reporting it at the end.
    pub skip_errors: bool,
}

/// Register everything: tasks concurrently, then workflows and launch plans in dependency layers
/// (each layer concurrently), then activate launch plans.
pub async fn register_entities(
    client: &AdminClient,
    entities: &[PlannedEntity],
    flags: RegisterFlags,
    progress: &Progress,
) -> Result<Registered, RegisterError> {
    let RegisterFlags {
        activate_all,
        skip_errors,
    } = flags;
    use futures_util::stream::{self, StreamExt};
    const CONCURRENCY: usize = 32;
    let mut out = Registered::default();

    async fn one(client: &AdminClient, e: &PlannedEntity) -> Result<Created, AdminError> {
        let id = e.id();
        match &e.spec {
            Spec::Task(t) => client.create_task(id, t.clone()).await,
            Spec::Workflow(w) => client.create_workflow(id, w.clone()).await,
            Spec::LaunchPlan(lp) => {
                client
                    .create_launch_plan(id, lp.spec.clone().unwrap_or_default())
                    .await
            }
        }
    }

    let tasks: Vec<usize> = entities
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.spec, Spec::Task(_)))
        .map(|(i, _)| i)
        .collect();
    let mut layers = vec![tasks];
    layers.extend(dependency_layers(entities));
    let total: usize = layers.iter().map(Vec::len).sum();
    progress.phase(&format!(
        "Registering {total} entities with {}",
        client.endpoint()
    ));
    // A signal now must not leave the user guessing what is registered: stop sending, say how far
    // it got, and exit (a second signal exits at once).
    let _cooperative = crate::process::Cooperative::enter();
    crate::process::test_pause_point("registering");
    let stopped = |signal: i32, done: usize, activation_pending: bool| RegisterError::Interrupted {
        signal,
        done,
        total,
        activation_pending,
    };
    for layer in layers {
        let mut pending = stream::iter(layer)
            .map(|i| async move { (i, one(client, &entities[i]).await) })
            .buffer_unordered(CONCURRENCY);
        let mut results: Vec<(usize, Result<Created, AdminError>)> = Vec::new();
        loop {
            let done = out.new + out.existed + out.failed.len();
            let next = tokio::select! {
                biased;
                sig = crate::process::interruption() => return Err(stopped(sig, done, false)),
                next = pending.next() => next,
            };
            let Some((i, r)) = next else { break };
            let r = match r {
                Err(source) if source.is_connection() || !skip_errors => {
                    return Err(RegisterError::Registering {
                        done,
                        total,
                        source,
                    });
                }
                r => r,
            };
            match &r {
                Ok(Created::New) => out.new += 1,
                Ok(Created::AlreadyExisted) => out.existed += 1,
                Err(_) => out.failed.push(id_text(&entities[i].id())),
            }
            results.push((i, r));
        }
        // Reported in flytekit's order, whatever order the server answered in.
        results.sort_by_key(|(i, _)| *i);
        for (i, r) in results {
            let e = &entities[i];
            match r {
                Ok(Created::New) => {
                    progress.item(&format!("{} {}", e.kind(), id_text(&e.id())), "registered");
                }
                Ok(Created::AlreadyExisted) => {
                    progress.item(
                        &format!("{} {}", e.kind(), id_text(&e.id())),
                        "already registered",
                    );
                }
                Err(err) => progress.warn(&format!("{} {}: {err}", e.kind(), id_text(&e.id()))),
            }
        }
    }
    // Activation: launch plans with a schedule, or all with --activate-launchplans.
    for e in entities {
        if let Spec::LaunchPlan(_) = e.spec {
            if activate_all || e.auto_activate {
                if out.failed.contains(&id_text(&e.id())) {
                    continue;
                }
                if let Some(sig) = crate::process::interrupted() {
                    return Err(stopped(sig, out.new + out.existed, true));
                }
                client.activate_launch_plan(e.id()).await?;
                out.activated += 1;
                progress.item(&format!("launch plan {}", id_text(&e.id())), "activated");
            }
        }
    }
    let mut summary = format!("{} new, {} already registered", out.new, out.existed);
    if out.activated > 0 {
        summary.push_str(&format!(", {} activated", out.activated));
    }
    if !out.failed.is_empty() {
        summary.push_str(&format!(", {} failed (skipped)", out.failed.len()));
    }
    progress.done(&summary);
    Ok(out)
}

/// What [`publish`] did.
pub struct Published {
    pub entities: Vec<PlannedEntity>,
    pub version: String,
    pub registered: Registered,
}

/// Connect to the backend named by `settings` (before anything slow, so that a backend that is
/// down is reported at once).
pub fn connect(
    rt: &tokio::runtime::Runtime,
    settings: &union_client::config::Settings,
    progress: &Progress,
) -> Result<AdminClient, RegisterError> {
    progress.phase(&format!("Connecting to {}", settings.endpoint));
    crate::process::test_pause_point("connecting");
    let client = rt.block_on(AdminClient::connect(
        settings,
        crate::process::login_notice(),
    ))?;
    progress.done("ok");
    Ok(client)
}

/// Upload the code archive, serialize with its location, and register everything.
/// Images must have been taken care of before (see [`super::images::ensure`]).
pub fn publish(
    rt: &tokio::runtime::Runtime,
    client: &AdminClient,
    loaded: &Loaded,
    opts: &PlanOptions,
    settings: &union_client::config::Settings,
    flags: RegisterFlags,
    progress: &Progress,
) -> Result<Published, RegisterError> {
    let location = match &loaded.archive {
        Some((archive, bytes)) => {
            progress.phase("Uploading code");
            crate::process::test_pause_point("uploading");
            let url = rt.block_on(upload::upload_archive(
                client,
                &settings.project,
                &settings.domain,
                archive,
                bytes.clone(),
            ))?;
            progress.done(&format!(
                "{} files, {} → {url}",
                archive.file_count,
                human_bytes(archive.compressed_size)
            ));
            Some(url)
        }
        None => None,
    };
    progress.phase("Serializing");
    crate::process::test_pause_point("serializing");
    let (entities, version) = serialize_for_registration(loaded, opts, location.as_deref())?;
    progress.done(&format!(
        "{} specs{}, version {version}",
        entities.len(),
        processes_note(loaded)
    ));
    check_pullable(rt, &entities, opts.pull_check, progress)?;
    let registered = rt.block_on(register_entities(client, &entities, flags, progress))?;
    Ok(Published {
        entities,
        version,
        registered,
    })
}

/// Warn about (or, with `--require-pullable-images`, refuse) task images the cluster could not
/// pull, before anything is registered.
fn check_pullable(
    rt: &tokio::runtime::Runtime,
    entities: &[PlannedEntity],
    how: super::pullable::PullCheck,
    progress: &Progress,
) -> Result<(), RegisterError> {
    let mut images: Vec<String> = entities
        .iter()
        .filter_map(|e| match &e.spec {
            Spec::Task(t) => t
                .template
                .as_ref()
                .and_then(|t| t.target.as_ref())
                .and_then(|target| match target {
                    union_idl::flyteidl::core::task_template::Target::Container(c) => {
                        Some(c.image.clone())
                    }
                    _ => None,
                }),
            _ => None,
        })
        .filter(|i| !i.is_empty())
        .collect();
    images.sort();
    images.dedup();
    let bad = rt.block_on(super::pullable::check(&images, how));
    if bad.is_empty() {
        return Ok(());
    }
    if how.require {
        return Err(RegisterError::Unpullable(
            bad.iter()
                .map(|u| super::pullable::message(u, how))
                .collect(),
        ));
    }
    for u in &bad {
        progress.warn(&super::pullable::message(u, how));
    }
    Ok(())
}

/// " in N processes" when flytekit's serialization was shared out among worker processes.
pub fn processes_note(loaded: &Loaded) -> String {
    match loaded.session.serialize_processes() {
        n if n > 1 => format!(" in {n} processes"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wf(name: &str, lp_refs: &[&str]) -> PlannedEntity {
        let nodes = lp_refs
            .iter()
            .map(|r| core::Node {
                id: format!("n-{r}"),
                target: Some(core::node::Target::WorkflowNode(core::WorkflowNode {
                    reference: Some(core::workflow_node::Reference::LaunchplanRef(
                        core::Identifier {
                            resource_type: core::ResourceType::LaunchPlan as i32,
                            name: r.to_string(),
                            ..Default::default()
                        },
                    )),
                })),
                ..Default::default()
            })
            .collect();
        let id = core::Identifier {
            resource_type: core::ResourceType::Workflow as i32,
            name: name.into(),
            ..Default::default()
        };
        PlannedEntity {
            spec: Spec::Workflow(admin::WorkflowSpec {
                template: Some(core::WorkflowTemplate {
                    id: Some(id),
                    nodes,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            pb: vec![],
            auto_activate: false,
        }
    }

    fn lp(name: &str, wf: &str) -> PlannedEntity {
        PlannedEntity {
            spec: Spec::LaunchPlan(admin::LaunchPlan {
                id: Some(core::Identifier {
                    resource_type: core::ResourceType::LaunchPlan as i32,
                    name: name.into(),
                    ..Default::default()
                }),
                spec: Some(admin::LaunchPlanSpec {
                    workflow_id: Some(core::Identifier {
                        resource_type: core::ResourceType::Workflow as i32,
                        name: wf.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            pb: vec![],
            auto_activate: false,
        }
    }

    #[test]
    fn launch_plans_follow_their_workflows_and_referencing_workflows_follow_them() {
        // outer calls launch plan `inner_lp` of workflow `inner`.
        let es = vec![
            wf("outer", &["inner_lp"]),
            lp("outer", "outer"),
            wf("inner", &[]),
            lp("inner_lp", "inner"),
        ];
        let layers = dependency_layers(&es);
        let pos = |i: usize| layers.iter().position(|l| l.contains(&i)).unwrap();
        assert!(pos(2) < pos(3), "inner before its LP");
        assert!(pos(3) < pos(0), "inner_lp before outer");
        assert!(pos(0) < pos(1), "outer before its LP");
    }
}
