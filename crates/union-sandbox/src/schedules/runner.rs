//! The scheduler's loop: once a second, read the active scheduled launch plans, start what is
//! due, record each fire.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use rusqlite::params;
use tonic::Code;

use super::{execution_name, Schedule, CATCH_UP_ENV, NOW_ENV};
use crate::executions::Executions;
use crate::store::{EntityKey, Store, StoreError};
use union_idl::flyteidl::admin::{
    execution_metadata::ExecutionMode, ExecutionCreateRequest, ExecutionMetadata, ExecutionSpec,
    LaunchPlanSpec,
};
use union_idl::flyteidl::core::{
    literal, primitive, scalar, Identifier, Literal, LiteralMap, Primitive, ResourceType, Scalar,
};

/// What the scheduler did, for whoever runs the sandbox to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleEvent {
    /// An execution was started (or existed already: the time was fired before).
    Started {
        /// `project/domain/name@version` of the launch plan.
        launch_plan: String,
        /// Unix seconds.
        scheduled_at: i64,
        execution: String,
    },
    /// Starting one failed; the schedule goes on.
    Failed {
        launch_plan: String,
        scheduled_at: i64,
        error: String,
    },
    /// A launch plan's schedule cannot run (its spec says why).
    Invalid {
        launch_plan: String,
        error: super::ScheduleError,
    },
}

/// Receives [`ScheduleEvent`]s.
pub trait ScheduleReporter: Send + Sync + std::fmt::Debug {
    fn report(&self, event: ScheduleEvent);
}

/// The scheduler's clock: the real one, or one started at [`NOW_ENV`]'s time.
struct Clock {
    start: Instant,
    at_start: i64,
}

impl Clock {
    fn from_env() -> Clock {
        let real = crate::store::now_nanos() / 1_000_000_000;
        let at_start = std::env::var(NOW_ENV)
            .ok()
            .and_then(|v| super::cron::parse_rfc3339(v.trim()))
            .unwrap_or(real);
        Clock {
            start: Instant::now(),
            at_start,
        }
    }

    fn now(&self) -> i64 {
        self.at_start + self.start.elapsed().as_secs() as i64
    }
}

struct Job {
    schedule: Schedule,
    /// The next time to fire; None: never.
    next: Option<i64>,
}

/// Start the scheduler on the current runtime; abort the handle to stop it.
pub fn spawn(
    store: Arc<Store>,
    executions: Arc<Executions>,
    reporter: Option<Arc<dyn ScheduleReporter>>,
) -> tokio::task::JoinHandle<()> {
    let catch_up = !matches!(
        std::env::var(CATCH_UP_ENV).ok().as_deref().map(str::trim),
        Some("0" | "false" | "no")
    );
    tokio::spawn(async move {
        let clock = Clock::from_env();
        let mut jobs: HashMap<EntityKey, Job> = HashMap::new();
        let mut invalid: HashSet<EntityKey> = HashSet::new();
        let mut booting = true;
        let report = |e: ScheduleEvent| {
            if let Some(r) = &reporter {
                r.report(e);
            }
        };
        loop {
            let now = clock.now();
            let s = store.clone();
            let active = tokio::task::spawn_blocking(move || active_schedules(&s)).await;
            if let Ok(Ok(active)) = active {
                jobs.retain(|k, _| active.iter().any(|a| &a.key == k));
                invalid.retain(|k| active.iter().any(|a| &a.key == k));
                for a in active {
                    if jobs.contains_key(&a.key) || invalid.contains(&a.key) {
                        continue;
                    }
                    match a.schedule {
                        Ok(schedule) => {
                            // At start, from where it left off (FlyteScheduler's bootstrap);
                            // activated later, from now on.
                            let anchor = a.last_fire.unwrap_or(i64::MIN).max(a.activated_at);
                            let next = if booting && catch_up {
                                schedule.timing.next(anchor)
                            } else {
                                schedule.timing.first_after(anchor, now)
                            };
                            jobs.insert(a.key, Job { schedule, next });
                        }
                        Err(error) => {
                            report(ScheduleEvent::Invalid {
                                launch_plan: lp_text(&a.key),
                                error,
                            });
                            invalid.insert(a.key);
                        }
                    }
                }
                booting = false;
            }
            let mut due: Vec<(EntityKey, i64, String)> = Vec::new();
            for (key, job) in jobs.iter_mut() {
                while let Some(at) = job.next.filter(|t| *t <= now) {
                    due.push((key.clone(), at, job.schedule.kickoff_time_input_arg.clone()));
                    job.next = job.schedule.timing.next(at);
                }
            }
            due.sort_by_key(|(_, at, _)| *at);
            for (key, at, kickoff) in due {
                let event = match fire(&executions, &key, at, &kickoff).await {
                    Ok(execution) => ScheduleEvent::Started {
                        launch_plan: lp_text(&key),
                        scheduled_at: at,
                        execution,
                    },
                    Err(error) => ScheduleEvent::Failed {
                        launch_plan: lp_text(&key),
                        scheduled_at: at,
                        error,
                    },
                };
                report(event);
                let s = store.clone();
                let _ = tokio::task::spawn_blocking(move || record_fire(&s, &key, at)).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

fn lp_text(k: &EntityKey) -> String {
    format!("{}/{}/{}@{}", k.project, k.domain, k.name, k.version)
}

/// Start the execution of `key` for `at`, named as FlyteScheduler names it; one that exists
/// already means this time was fired before.
async fn fire(
    executions: &Arc<Executions>,
    key: &EntityKey,
    at: i64,
    kickoff: &str,
) -> Result<String, String> {
    let name = execution_name(&key.project, &key.domain, &key.name, &key.version, at);
    let when = union_idl::google_protobuf::Timestamp {
        seconds: at,
        nanos: 0,
    };
    let mut inputs = LiteralMap::default();
    if !kickoff.is_empty() {
        inputs.literals.insert(
            kickoff.to_string(),
            Literal {
                value: Some(literal::Value::Scalar(Box::new(Scalar {
                    value: Some(scalar::Value::Primitive(Primitive {
                        value: Some(primitive::Value::Datetime(when)),
                    })),
                }))),
                ..Default::default()
            },
        );
    }
    let request = ExecutionCreateRequest {
        project: key.project.clone(),
        domain: key.domain.clone(),
        name: name.clone(),
        org: key.org.clone(),
        spec: Some(ExecutionSpec {
            launch_plan: Some(Identifier {
                resource_type: ResourceType::LaunchPlan as i32,
                project: key.project.clone(),
                domain: key.domain.clone(),
                name: key.name.clone(),
                version: key.version.clone(),
                org: key.org.clone(),
            }),
            metadata: Some(ExecutionMetadata {
                mode: ExecutionMode::Scheduled as i32,
                scheduled_at: Some(when),
                ..Default::default()
            }),
            ..Default::default()
        }),
        inputs: Some(inputs),
    };
    match executions.create(request).await {
        Ok(_) => Ok(name),
        Err(s) if s.code() == Code::AlreadyExists => Ok(name),
        Err(s) => Err(s.message().to_string()),
    }
}

struct Active {
    key: EntityKey,
    schedule: Result<Schedule, super::ScheduleError>,
    /// Unix seconds of the last change of its state (when it was activated).
    activated_at: i64,
    last_fire: Option<i64>,
}

/// Active launch plan versions that have a schedule, with their last fire times.
fn active_schedules(store: &Store) -> Result<Vec<Active>, StoreError> {
    store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT e.org, e.project, e.domain, e.name, e.version, e.spec, e.updated_at, f.last_fire
             FROM entities e LEFT JOIN schedule_fires f ON f.org=e.org AND f.project=e.project
               AND f.domain=e.domain AND f.name=e.name AND f.version=e.version
             WHERE e.resource_type=3 AND e.state=1",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                EntityKey {
                    org: r.get(0)?,
                    project: r.get(1)?,
                    domain: r.get(2)?,
                    name: r.get(3)?,
                    version: r.get(4)?,
                },
                r.get::<_, Vec<u8>>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, Option<i64>>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, spec, updated_at, last_fire) = row?;
            let schedule = match LaunchPlanSpec::decode(spec.as_slice()) {
                Ok(spec) => Schedule::of(&spec).transpose(),
                Err(e) => Some(Err(super::ScheduleError::Undecodable(e.to_string()))),
            };
            if let Some(schedule) = schedule {
                out.push(Active {
                    key,
                    schedule,
                    activated_at: updated_at.div_euclid(1_000_000_000),
                    last_fire,
                });
            }
        }
        Ok(out)
    })
}

fn record_fire(store: &Store, key: &EntityKey, at: i64) -> Result<(), StoreError> {
    store.write(|tx| {
        tx.prepare_cached(
            "INSERT INTO schedule_fires (org, project, domain, name, version, last_fire)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (org, project, domain, name, version)
             DO UPDATE SET last_fire=max(last_fire, excluded.last_fire)",
        )?
        .execute(params![
            key.org,
            key.project,
            key.domain,
            key.name,
            key.version,
            at
        ])?;
        Ok(())
    })
}
