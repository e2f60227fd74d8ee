//! Scheduled launch plans, as FlyteScheduler (`flyteadmin/scheduler/`) runs them: every ACTIVE
//! launch plan whose spec has `entity_metadata.schedule` starts executions on time, through the
//! same code path as `CreateExecution`.
//!
//! What is FlyteScheduler's here:
//! - schedules: `cron_schedule.schedule` in its cron dialect ([`cron`]; `offset` is ignored, as
//!   it does) and `rate` (minutes, hours, days); the deprecated `cron_expression` cannot be
//!   activated (flyteadmin's scheduler refuses it);
//! - each execution is named `f` + 19 hex digits of the FNV-1 hash of
//!   `project:domain:name:version:<unix seconds>` (FlyteScheduler's `GetExecutionIdentifier`), so
//!   a time fired twice is refused as ALREADY_EXISTS and counts as done; its metadata says mode
//!   SCHEDULED with `scheduled_at`; `kickoff_time_input_arg`, if set, is given the scheduled time
//!   as a datetime input;
//! - activation and deactivation (UpdateLaunchPlan, `register --activate-launchplans`) take effect
//!   at the next tick (a second; FlyteScheduler polls every 30 s). A schedule activated while the
//!   sandbox runs first fires at its next time after that (a fixed rate: one period after the
//!   activation); a new version is a new schedule;
//! - after a restart, each active schedule catches up every time it missed: those after the later
//!   of its last fire (recorded in `schedule_fires`) and its activation, up to now, each started
//!   with its own scheduled time, in order. Then it goes on.
//!
//! Where the sandbox differs: schedules are evaluated in UTC (FlyteScheduler uses its server's
//! local zone unless `useUTCTz`, and robfig's `TZ=` prefixes; only UTC is accepted here); fixed
//! rates get their kickoff time input too (FlyteScheduler gives it to cron schedules only, so its
//! fixed-rate executions with one fail for the missing input); a failed start is reported, not
//! retried (FlyteScheduler retries for an unreachable admin, which cannot happen in-process).
//!
//! Testing hooks, honoured by the sandbox only: [`NOW_ENV`] starts the scheduler's clock at a given
//! time (it then runs at the real pace), [`CATCH_UP_ENV`]`=false` skips catching up.

pub mod cron;
mod runner;

pub use runner::{spawn, ScheduleEvent, ScheduleReporter};

use union_idl::flyteidl::admin::{schedule::ScheduleExpression, FixedRateUnit, LaunchPlanSpec};
use union_idl::flyteidl::core::{literal_type, SimpleType};

/// Start the scheduler's clock at this time (RFC 3339 in UTC, `2024-05-01T10:00:00Z`, or unix
/// seconds) instead of now; it then advances in real time. For tests of schedules and catch-up.
pub const NOW_ENV: &str = "UNION_SANDBOX_SCHEDULER_NOW";
/// `false`/`0`: at start, do not catch up the times schedules missed while the sandbox was down.
pub const CATCH_UP_ENV: &str = "UNION_SANDBOX_SCHEDULER_CATCH_UP";

/// Why a launch plan's schedule cannot be created or run, worded as flyteadmin words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse (robfig's reason), or never fires.
    #[error("Invalid cron expression: {reason}")]
    InvalidCron { expression: String, reason: String },
    /// A required input is neither fixed, defaulted, nor the kickoff time.
    #[error("Cannot create a launch plan with a schedule if there is an unbound required input. [{input}] is required")]
    UnboundInput { input: String },
    /// `kickoff_time_input_arg` names no free input.
    #[error("Cannot create a schedule with a KickoffTimeInputArg that does not point to a free input. [{arg}] is not free or does not exist.")]
    KickoffNotFree { arg: String },
    /// `kickoff_time_input_arg` names an input that is not a datetime.
    #[error("KickoffTimeInputArg must reference a datetime input. [{arg}] is not a datetime")]
    KickoffNotDatetime { arg: String },
    /// The fixed rate's unit is not minutes, hours or days.
    #[error("unsupported unit {unit} for fixed rate scheduling")]
    RateUnit { unit: i32 },
    /// The deprecated `cron_expression` form, which FlyteScheduler cannot run.
    #[error("the deprecated `cron_expression` schedule cannot run on FlyteScheduler: use a cron_schedule (flytekit's CronSchedule(schedule=...))")]
    DeprecatedCronExpression,
    /// The stored spec could not be decoded.
    #[error("its stored spec cannot be decoded: {0}")]
    Undecodable(String),
}

fn invalid_cron(expression: &str, reason: String) -> ScheduleError {
    ScheduleError::InvalidCron {
        expression: expression.to_string(),
        reason,
    }
}

/// When a schedule fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timing {
    /// A cron schedule.
    Cron(cron::CronSpec),
    /// A fixed rate, in seconds.
    Every(i64),
}

impl Timing {
    /// The first time strictly after `after` (unix seconds); None: never.
    pub fn next(&self, after: i64) -> Option<i64> {
        match self {
            Timing::Cron(c) => c.next(after),
            Timing::Every(secs) => Some(after + secs),
        }
    }

    /// The first time after `now` of a schedule that starts at `anchor` (its activation), with
    /// nothing caught up: a cron schedule's next time, a fixed rate's next multiple of its period
    /// from the anchor.
    pub fn first_after(&self, anchor: i64, now: i64) -> Option<i64> {
        match self {
            Timing::Cron(c) => c.next(now),
            Timing::Every(secs) if anchor >= now => Some(anchor + secs),
            Timing::Every(secs) => Some(anchor + ((now - anchor) / secs + 1) * secs),
        }
    }

    /// FlyteScheduler's `GetCatchUpTimes`: every time in (`from`, `to`], in order.
    pub fn catch_up(&self, from: i64, to: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let mut current = from;
        while current < to {
            match self.next(current) {
                Some(t) if t <= to => {
                    out.push(t);
                    current = t;
                }
                _ => break,
            }
        }
        out
    }
}

/// A launch plan's schedule, ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub timing: Timing,
    /// The input given the scheduled time ("" for none).
    pub kickoff_time_input_arg: String,
}

impl Schedule {
    /// The schedule of a launch plan spec: Ok(None) without one, Err when it cannot run (the
    /// message says why).
    pub fn of(spec: &LaunchPlanSpec) -> Result<Option<Schedule>, ScheduleError> {
        let Some(s) = spec
            .entity_metadata
            .as_ref()
            .and_then(|m| m.schedule.as_ref())
        else {
            return Ok(None);
        };
        #[allow(deprecated)]
        let timing = match &s.schedule_expression {
            None => return Ok(None),
            Some(ScheduleExpression::CronSchedule(c)) if c.schedule.is_empty() => return Ok(None),
            Some(ScheduleExpression::CronSchedule(c)) => Timing::Cron(
                cron::CronSpec::parse(&c.schedule).map_err(|e| invalid_cron(&c.schedule, e))?,
            ),
            Some(ScheduleExpression::Rate(r)) if r.value == 0 => return Ok(None),
            Some(ScheduleExpression::Rate(r)) => {
                let unit = match FixedRateUnit::try_from(r.unit) {
                    Ok(FixedRateUnit::Minute) => 60,
                    Ok(FixedRateUnit::Hour) => 3600,
                    Ok(FixedRateUnit::Day) => 86_400,
                    Err(_) => return Err(ScheduleError::RateUnit { unit: r.unit }),
                };
                Timing::Every(i64::from(r.value) * unit)
            }
            Some(ScheduleExpression::CronExpression(e)) if e.is_empty() => return Ok(None),
            Some(ScheduleExpression::CronExpression(_)) => {
                return Err(ScheduleError::DeprecatedCronExpression)
            }
        };
        Ok(Some(Schedule {
            timing,
            kickoff_time_input_arg: s.kickoff_time_input_arg.clone(),
        }))
    }
}

/// flyteadmin's `validateSchedule` at CreateLaunchPlan: no required input may be left unbound but
/// the kickoff time argument, which must be a free datetime input; a cron expression must parse
/// (and, unlike robfig, fire at all).
pub fn validate(spec: &LaunchPlanSpec) -> Result<(), ScheduleError> {
    #[allow(deprecated)]
    let Some(s) = spec
        .entity_metadata
        .as_ref()
        .and_then(|m| m.schedule.as_ref())
    else {
        return Ok(());
    };
    if s.schedule_expression.is_none() {
        return Ok(());
    }
    let params = spec
        .default_inputs
        .as_ref()
        .map(|p| &p.parameters)
        .cloned()
        .unwrap_or_default();
    for (name, p) in &params {
        let required = matches!(
            p.behavior,
            Some(union_idl::flyteidl::core::parameter::Behavior::Required(
                true
            ))
        );
        if required && *name != s.kickoff_time_input_arg {
            return Err(ScheduleError::UnboundInput {
                input: name.clone(),
            });
        }
    }
    if !s.kickoff_time_input_arg.is_empty() {
        let arg = &s.kickoff_time_input_arg;
        let Some(p) = params.get(arg) else {
            return Err(ScheduleError::KickoffNotFree { arg: arg.clone() });
        };
        let simple = p
            .var
            .as_ref()
            .and_then(|v| v.r#type.as_ref())
            .and_then(|t| t.r#type.as_ref());
        if simple != Some(&literal_type::Type::Simple(SimpleType::Datetime as i32)) {
            return Err(ScheduleError::KickoffNotDatetime { arg: arg.clone() });
        }
    }
    #[allow(deprecated)]
    let cron_text = match &s.schedule_expression {
        Some(ScheduleExpression::CronSchedule(c)) => c.schedule.as_str(),
        Some(ScheduleExpression::CronExpression(e)) => e.as_str(),
        _ => "",
    };
    if !cron_text.is_empty() {
        let c = cron::CronSpec::parse(cron_text).map_err(|e| invalid_cron(cron_text, e))?;
        if c.next(0).is_none() && c.next(crate::store::now_nanos() / 1_000_000_000).is_none() {
            return Err(invalid_cron(
                cron_text,
                format!("`{cron_text}` never fires"),
            ));
        }
    }
    Ok(())
}

/// FlyteScheduler's execution name for a launch plan version fired at `scheduled_at`:
/// `"f" + uuid(le_bytes(fnv1_64("p:d:n:v:secs")) ++ 8 zero bytes).replace("-", "")[:19]`.
pub fn execution_name(project: &str, domain: &str, name: &str, version: &str, at: i64) -> String {
    let input = format!("{project}:{domain}:{name}:{version}:{at}");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input.bytes() {
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        h ^= u64::from(b);
    }
    let hex: String = h.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("f{hex}000")
}

#[cfg(test)]
mod tests {
    use super::*;
    use union_idl::flyteidl::admin::{
        self, schedule::ScheduleExpression as E, CronSchedule, FixedRate, LaunchPlanMetadata,
    };
    use union_idl::flyteidl::core::{self, parameter::Behavior, LiteralType, Parameter, Variable};

    fn spec(expr: E, kickoff: &str, inputs: Vec<(&str, SimpleType, bool)>) -> LaunchPlanSpec {
        LaunchPlanSpec {
            entity_metadata: Some(LaunchPlanMetadata {
                schedule: Some(admin::Schedule {
                    kickoff_time_input_arg: kickoff.into(),
                    schedule_expression: Some(expr),
                }),
                ..Default::default()
            }),
            default_inputs: Some(core::ParameterMap {
                parameters: inputs
                    .into_iter()
                    .map(|(n, t, required)| {
                        (
                            n.to_string(),
                            Parameter {
                                var: Some(Variable {
                                    r#type: Some(LiteralType {
                                        r#type: Some(literal_type::Type::Simple(t as i32)),
                                        ..Default::default()
                                    }),
                                    ..Default::default()
                                }),
                                behavior: Some(if required {
                                    Behavior::Required(true)
                                } else {
                                    Behavior::Default(core::Literal::default())
                                }),
                            },
                        )
                    })
                    .collect(),
            }),
            ..Default::default()
        }
    }

    fn cron(s: &str) -> E {
        E::CronSchedule(CronSchedule {
            schedule: s.into(),
            offset: String::new(),
        })
    }

    #[test]
    fn names_are_flyteschedulers() {
        // FlyteScheduler's recipe replayed in Python (FNV-1 64, then
        // "f" + str(uuid.UUID(bytes=le8 + zeros8)).replace("-", "")[:19]).
        let n = execution_name("flytesnacks", "development", "lp", "v1", 1_714_557_600);
        assert_eq!(n, "fe2a3570e7d387ce0000");
        assert_eq!(
            n,
            execution_name("flytesnacks", "development", "lp", "v1", 1_714_557_600)
        );
        assert_ne!(
            n,
            execution_name("flytesnacks", "development", "lp", "v1", 1_714_557_660)
        );
        // The FNV-1 (not 1a) 64-bit test vector for "a", as Go's hash/fnv.New64 computes it.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        h = h.wrapping_mul(0x0000_0100_0000_01b3) ^ u64::from(b'a');
        assert_eq!(h, 0xaf63_bd4c_8601_b7be);
    }

    #[test]
    fn catch_up_lists_every_missed_time_up_to_now_inclusive() {
        let every_minute = Timing::Cron(cron::CronSpec::parse("* * * * *").unwrap());
        assert_eq!(every_minute.catch_up(30, 200), vec![60, 120, 180]);
        assert_eq!(every_minute.catch_up(60, 180), vec![120, 180]);
        assert_eq!(every_minute.catch_up(200, 200), Vec::<i64>::new());
        let hourly = Timing::Every(3600);
        assert_eq!(hourly.catch_up(100, 7300), vec![3700, 7300]);
        // Activated while running: nothing caught up; a fixed rate keeps its activation's phase.
        assert_eq!(hourly.first_after(100, 101), Some(3700));
        assert_eq!(hourly.first_after(100, 3700), Some(7300));
        assert_eq!(hourly.first_after(100, 50), Some(3700));
        assert_eq!(every_minute.first_after(0, 130), Some(180));
        let never = Timing::Cron(cron::CronSpec::parse("0 0 30 2 *").unwrap());
        assert!(never.catch_up(0, 10_000_000).is_empty());
    }

    #[test]
    fn schedules_from_specs() {
        let s = Schedule::of(&spec(cron("@hourly"), "t", vec![]))
            .unwrap()
            .unwrap();
        assert_eq!(s.kickoff_time_input_arg, "t");
        assert_eq!(s.timing.next(0), Some(3600));
        let rate = E::Rate(FixedRate {
            value: 2,
            unit: FixedRateUnit::Hour as i32,
        });
        let s = Schedule::of(&spec(rate, "", vec![])).unwrap().unwrap();
        assert_eq!(s.timing, Timing::Every(7200));
        assert_eq!(Schedule::of(&LaunchPlanSpec::default()).unwrap(), None);
        #[allow(deprecated)]
        let old = E::CronExpression("0 * * * ? *".into());
        assert_eq!(
            Schedule::of(&spec(old, "", vec![])),
            Err(ScheduleError::DeprecatedCronExpression)
        );
    }

    #[test]
    fn validation_is_flyteadmins() {
        let ok = spec(
            cron("* * * * *"),
            "kickoff",
            vec![
                ("kickoff", SimpleType::Datetime, true),
                ("n", SimpleType::Integer, false),
            ],
        );
        validate(&ok).unwrap();
        let unbound = spec(
            cron("* * * * *"),
            "",
            vec![("n", SimpleType::Integer, true)],
        );
        assert!(validate(&unbound)
            .unwrap_err()
            .to_string()
            .contains("[n] is required"));
        let not_free = spec(cron("* * * * *"), "kickoff", vec![]);
        assert_eq!(
            validate(&not_free).unwrap_err(),
            ScheduleError::KickoffNotFree {
                arg: "kickoff".into()
            }
        );
        let not_datetime = spec(
            cron("* * * * *"),
            "kickoff",
            vec![("kickoff", SimpleType::String, true)],
        );
        assert!(matches!(
            validate(&not_datetime),
            Err(ScheduleError::KickoffNotDatetime { .. })
        ));
        let bad = spec(cron("hourly"), "", vec![]);
        assert!(validate(&bad)
            .unwrap_err()
            .to_string()
            .contains("Invalid cron expression: expected exactly 5 fields"));
        let never = spec(cron("0 0 30 2 *"), "", vec![]);
        assert!(validate(&never)
            .unwrap_err()
            .to_string()
            .contains("never fires"));
    }
}
