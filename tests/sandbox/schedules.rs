//! Scheduled launch plans in the sandbox, end to end: registered and activated with `union
//! register --activate-launchplans`, fired on the minute with the kickoff time as input and
//! FlyteScheduler's execution names, deactivated without a restart, and caught up after one.
//!
//! One wait on the wall clock (the first fire of `* * * * *`, at most a minute); the catch-up
//! part starts the sandbox's scheduler clock three minutes ahead
//! (`UNION_SANDBOX_SCHEDULER_NOW`) instead of waiting. No assertion depends on how long
//! anything takes.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::exec::{exec_id, wait_done, DOMAIN, PROJECT};
use crate::support::sandbox::Launch;
use crate::support::*;
use union_idl::flyteidl::admin::{
    execution_metadata::ExecutionMode, Execution, LaunchPlanUpdateRequest, NamedEntityIdentifier,
    ResourceListRequest, WorkflowExecutionGetDataRequest,
};
use union_idl::flyteidl::core::{
    literal, primitive, scalar, workflow_execution::Phase, Identifier, ResourceType,
};
use union_sandbox::schedules::{cron::rfc3339, execution_name, NOW_ENV};

/// Generous: it bounds a hang on a busy machine, it never decides a result.
const LONG: Duration = Duration::from_secs(600);

type Client = union_idl::flyteidl::service::admin_service_client::AdminServiceClient<
    tonic::transport::Channel,
>;

/// Every execution of the launch plan `lp` with its scheduled time (unix seconds).
async fn scheduled(admin: &mut Client, lp: &str) -> Vec<(i64, Execution)> {
    let list = admin
        .list_executions(ResourceListRequest {
            id: Some(NamedEntityIdentifier {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                ..Default::default()
            }),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("list executions")
        .into_inner()
        .executions;
    let mut out: Vec<(i64, Execution)> = list
        .into_iter()
        .filter(|e| {
            e.spec
                .as_ref()
                .and_then(|s| s.launch_plan.as_ref())
                .is_some_and(|l| l.name == lp)
        })
        .map(|e| {
            let meta = e
                .spec
                .as_ref()
                .and_then(|s| s.metadata.clone())
                .unwrap_or_default();
            assert_eq!(meta.mode, ExecutionMode::Scheduled as i32, "{e:?}");
            let at = meta.scheduled_at.expect("scheduled_at").seconds;
            (at, e)
        })
        .collect();
    out.sort_by_key(|(at, _)| *at);
    out
}

/// The kickoff time an execution was given.
async fn kickoff_input(admin: &mut Client, name: &str) -> i64 {
    let data = admin
        .get_execution_data(WorkflowExecutionGetDataRequest {
            id: Some(exec_id(name)),
        })
        .await
        .expect("get execution data")
        .into_inner();
    let lit = data
        .full_inputs
        .unwrap_or_default()
        .literals
        .remove("kickoff_time")
        .expect("a kickoff_time input");
    match lit.value {
        Some(literal::Value::Scalar(s)) => match s.value {
            Some(scalar::Value::Primitive(p)) => match p.value {
                Some(primitive::Value::Datetime(t)) => t.seconds,
                other => panic!("not a datetime: {other:?}"),
            },
            other => panic!("not a primitive: {other:?}"),
        },
        other => panic!("not a scalar: {other:?}"),
    }
}

async fn wait_for_fires(admin: &mut Client, lp: &str, times: &BTreeSet<i64>) {
    let start = std::time::Instant::now();
    loop {
        let seen: BTreeSet<i64> = scheduled(admin, lp)
            .await
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        if times.is_subset(&seen) {
            return;
        }
        assert!(
            start.elapsed() < LONG,
            "{lp}: expected fires at {:?}, saw {:?}",
            times.iter().map(|t| rfc3339(*t)).collect::<Vec<_>>(),
            seen.iter().map(|t| rfc3339(*t)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn lp_id(name: &str) -> Identifier {
    Identifier {
        resource_type: ResourceType::LaunchPlan as i32,
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        version: "v1".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_plans_fire_on_schedule_and_catch_up_after_a_restart() {
    require_docker_infra();
    let image = crate::support::exec::build_image("hello", "workflows");
    let data = tempfile::tempdir().unwrap();
    let sb = Sandbox::start_in(data.path());
    let p = Project::new("exec");
    let o = run(p.union_docker().args([
        "register",
        "--endpoint",
        &sb.endpoint(),
        "--image",
        &image,
        "--version",
        "v1",
        "--activate-launchplans",
        "workflows/scheduled.py",
    ]));
    assert!(o.status.success());
    let mut admin = sb.admin().await;

    // Live: the first minute after activation fires, named and fed as FlyteScheduler does.
    let first = {
        let start = std::time::Instant::now();
        loop {
            if let Some((at, e)) = scheduled(&mut admin, "every_minute_lp")
                .await
                .into_iter()
                .next()
            {
                break (at, e);
            }
            assert!(
                start.elapsed() < LONG,
                "every_minute_lp never fired:\n{}",
                sb.stderr()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let (at, e) = first;
    assert_eq!(at % 60, 0, "on the minute: {}", rfc3339(at));
    let name = e.id.as_ref().unwrap().name.clone();
    assert_eq!(
        name,
        execution_name(PROJECT, DOMAIN, "every_minute_lp", "v1", at)
    );
    assert_eq!(kickoff_input(&mut admin, &name).await, at);
    let done = wait_done(&mut admin, &name, LONG).await;
    assert_eq!(
        done.closure.as_ref().unwrap().phase,
        Phase::Succeeded as i32
    );
    let out = crate::support::exec::outputs(&mut admin, &name).await;
    let o0 = crate::support::exec::as_string(&out.literals["o0"]).unwrap();
    // The task saw the datetime flytekit made of the input.
    assert_eq!(o0, rfc3339(at).replace('Z', "+00:00"));
    assert!(
        sb.stderr().contains(&format!("schedule: started {name}")),
        "{}",
        sb.stderr()
    );

    // Deactivated while running (no restart): it is no longer scheduled, not even caught up.
    admin
        .update_launch_plan(LaunchPlanUpdateRequest {
            id: Some(lp_id("every_minute_lp")),
            state: 0,
        })
        .await
        .expect("deactivate");
    let mut sb = sb;
    let status = sb.stop_with(libc::SIGINT);
    assert!(status.success(), "{}", sb.stderr());
    let last_every = last_fire(data.path(), "every_minute_lp");
    let last_witness = last_fire(data.path(), "witness_lp");
    assert!(last_every >= at);
    drop(sb);

    // Restarted "three minutes later": the witness catches up every minute it missed, in the
    // first tick; the deactivated launch plan has nothing after its last fire.
    let now = last_witness.max(last_every) + 180;
    let now_text = rfc3339(now);
    let sb = Sandbox::launch(Launch {
        data_dir: Some(data.path()),
        env: &[(NOW_ENV, &now_text)],
        ..Launch::default()
    });
    let mut admin = sb.admin().await;
    let missed: BTreeSet<i64> = ((last_witness + 60)..=now).step_by(60).collect();
    assert!(missed.len() >= 3);
    wait_for_fires(&mut admin, "witness_lp", &missed).await;
    for t in &missed {
        let n = execution_name(PROJECT, DOMAIN, "witness_lp", "v1", *t);
        assert_eq!(kickoff_input(&mut admin, &n).await, *t);
    }
    let after: Vec<i64> = scheduled(&mut admin, "every_minute_lp")
        .await
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| *t > last_every)
        .collect();
    assert!(after.is_empty(), "fired after deactivation: {after:?}");
    sb.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyflyte_activation_and_a_fixed_rate_caught_up_from_the_activation() {
    let data = tempfile::tempdir().unwrap();
    let sb = Sandbox::start_in(data.path());
    let p = Project::new("exec");
    let config = sb.write_config(p.parent());
    let o = run(p
        .pyflyte(&config)
        .env("HOME", p.parent())
        .args(["register", "--version", "v1", "--activate-launchplans"])
        .arg("workflows/fixed_rate.py"));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut admin = sb.admin().await;
    let lp = admin
        .get_launch_plan(union_idl::flyteidl::admin::ObjectGetRequest {
            id: Some(lp_id("every_minute_rate_lp")),
        })
        .await
        .expect("get launch plan")
        .into_inner();
    let closure = lp.closure.unwrap();
    assert_eq!(closure.state, 1, "activated by pyflyte");
    let activated = closure.updated_at.unwrap().seconds;
    let mut sb = sb;
    assert!(sb.stop_with(libc::SIGINT).success());
    drop(sb);

    // Three minutes later: every minute since the activation, live or caught up, with its
    // kickoff time (FlyteScheduler gives fixed rates none: see docs/compatibility.md).
    let now = activated + 180;
    let now_text = rfc3339(now);
    let sb = Sandbox::launch(Launch {
        data_dir: Some(data.path()),
        env: &[(NOW_ENV, &now_text)],
        ..Launch::default()
    });
    let mut admin = sb.admin().await;
    let expected: BTreeSet<i64> = [activated + 60, activated + 120, activated + 180].into();
    wait_for_fires(&mut admin, "every_minute_rate_lp", &expected).await;
    for t in &expected {
        let n = execution_name(PROJECT, DOMAIN, "every_minute_rate_lp", "v1", *t);
        let e = wait_done(&mut admin, &n, LONG).await;
        assert_eq!(e.closure.unwrap().phase, Phase::Succeeded as i32);
        assert_eq!(kickoff_input(&mut admin, &n).await, *t);
    }
    sb.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_flyteadmin_refuses_are_refused() {
    use union_idl::flyteidl::admin::{schedule::ScheduleExpression, LaunchPlanCreateRequest};
    let sb = Sandbox::start();
    let p = Project::new("exec");
    let o = run(p.union().args([
        "register",
        "--endpoint",
        &sb.endpoint(),
        "--version",
        "v1",
        "workflows/fixed_rate.py",
    ]));
    assert!(o.status.success());
    let mut admin = sb.admin().await;
    let registered = admin
        .get_launch_plan(union_idl::flyteidl::admin::ObjectGetRequest {
            id: Some(lp_id("every_minute_rate_lp")),
        })
        .await
        .unwrap()
        .into_inner()
        .spec
        .unwrap();
    let with = |name: &str, expr: ScheduleExpression, kickoff: &str| {
        let mut spec = registered.clone();
        let schedule = spec
            .entity_metadata
            .as_mut()
            .unwrap()
            .schedule
            .as_mut()
            .unwrap();
        schedule.schedule_expression = Some(expr);
        schedule.kickoff_time_input_arg = kickoff.into();
        LaunchPlanCreateRequest {
            id: Some(lp_id(name)),
            spec: Some(spec),
        }
    };
    let cron = |s: &str| {
        ScheduleExpression::CronSchedule(union_idl::flyteidl::admin::CronSchedule {
            schedule: s.into(),
            offset: String::new(),
        })
    };
    for (name, request, message) in [
        (
            "alias",
            with("alias", cron("hourly"), "kickoff_time"),
            "Invalid cron expression: expected exactly 5 fields, found 1: [hourly]",
        ),
        (
            "unbound",
            with("unbound", cron("@hourly"), ""),
            "[kickoff_time] is required",
        ),
    ] {
        let e = admin.create_launch_plan(request).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{name}: {e:?}");
        assert!(e.message().contains(message), "{name}: {}", e.message());
    }
    // The deprecated form registers (flyteadmin validates it as a standard cron) but cannot be
    // activated: FlyteScheduler has no way to run it.
    #[allow(deprecated)]
    let old = ScheduleExpression::CronExpression("0 * * * *".into());
    admin
        .create_launch_plan(with("deprecated", old, "kickoff_time"))
        .await
        .expect("created");
    let e = admin
        .update_launch_plan(LaunchPlanUpdateRequest {
            id: Some(lp_id("deprecated")),
            state: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("cron_expression"), "{}", e.message());
}

/// The last time the scheduler fired `lp` (what a restart catches up from), read from the
/// stopped sandbox's database.
fn last_fire(data: &std::path::Path, lp: &str) -> i64 {
    let db = rusqlite::Connection::open(data.join("sandbox.db")).unwrap();
    db.query_row(
        "SELECT last_fire FROM schedule_fires WHERE name=?1",
        [lp],
        |r| r.get(0),
    )
    .unwrap_or_else(|e| panic!("no fire recorded for {lp}: {e}"))
}
