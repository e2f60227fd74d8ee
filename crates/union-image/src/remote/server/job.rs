//! A running build shared by every caller that asked for the same image: its events from the
//! start for late joiners, and cancellation when the last caller goes away.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::{BuildStream, Inner};
use crate::build::{BuildEvent, BuildReporter};
use union_idl::union::imagebuilder::v1 as pb;

/// Events a build keeps for callers that join late; beyond it, log lines are dropped.
const MAX_EVENTS: usize = 50_000;

/// What a build shares with everyone waiting for it.
#[derive(Debug, Default)]
pub(super) struct JobState {
    events: Vec<pb::BuildResponse>,
    finished: bool,
    pub(super) waiters: usize,
    pub(super) abort: Option<tokio::task::AbortHandle>,
    pub(super) record: Option<usize>,
}

#[derive(Debug)]
pub(super) struct Job {
    pub(super) image: String,
    state: Mutex<JobState>,
    changed: watch::Sender<u64>,
}

impl Job {
    /// A job for `image` with its first caller waiting.
    pub(super) fn new(image: String) -> Job {
        Job {
            image,
            state: Mutex::new(JobState {
                waiters: 1,
                ..Default::default()
            }),
            changed: watch::channel(0).0,
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, JobState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, event: pb::build_response::Event) {
        {
            let mut st = self.lock();
            if st.finished {
                return;
            }
            if st.events.len() >= MAX_EVENTS && matches!(event, pb::build_response::Event::Log(_)) {
                return;
            }
            st.events.push(pb::BuildResponse { event: Some(event) });
        }
        self.changed.send_modify(|v| *v += 1);
    }

    pub(super) fn note(&self, message: impl Into<String>) {
        self.push(pb::build_response::Event::Note(pb::Note {
            message: message.into(),
        }));
    }
}

/// Converts the local builder's progress into stream events.
pub(super) struct JobReporter<'a>(pub(super) &'a Job);

impl BuildReporter for JobReporter<'_> {
    fn event(&self, _image: &str, event: &BuildEvent) {
        use pb::build_response::Event;
        let e = match event {
            BuildEvent::StepStarted { step, cached } => Event::Step(pb::Step {
                step: step.clone(),
                cached: *cached,
                done: false,
                duration_seconds: 0.0,
            }),
            BuildEvent::StepDone {
                step,
                cached,
                duration,
            } => Event::Step(pb::Step {
                step: step.clone(),
                cached: *cached,
                done: true,
                duration_seconds: duration.map(|d| d.as_secs_f64()).unwrap_or(0.0),
            }),
            BuildEvent::Log { step, line } => Event::Log(pb::LogLine {
                step: step.clone(),
                line: line.clone(),
            }),
            // Per-chunk progress is noise over the network; statuses ("Pushed", "Layer already
            // exists", the digest) are kept.
            BuildEvent::Push {
                current: Some(_), ..
            } => return,
            BuildEvent::Push { status, .. } => Event::Push(pb::Push {
                status: status.clone(),
            }),
        };
        self.0.push(e);
    }
}

/// The build ended (or failed): record it, stream the last event, let new requests start over.
pub(super) fn finish(
    inner: &Inner,
    job: &Arc<Job>,
    result: Result<(String, bool), pb::BuildFailure>,
    elapsed: Duration,
) {
    use pb::build_response::Event;
    {
        let mut jobs = inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if jobs.get(&job.image).is_some_and(|j| Arc::ptr_eq(j, job)) {
            jobs.remove(&job.image);
        }
    }
    let record = job.lock().record;
    let last = match result {
        Ok((image, built)) => {
            if let Some(r) = record {
                inner.records.finish(r, "built", None);
            }
            Event::Result(pb::BuildResult {
                fully_qualified_image: image,
                built,
                duration_seconds: elapsed.as_secs_f64(),
            })
        }
        Err(f) => {
            if let Some(r) = record {
                inner.records.finish(r, "failed", Some(f.message.clone()));
            }
            Event::Error(f)
        }
    };
    {
        let mut st = job.lock();
        st.events.push(pb::BuildResponse { event: Some(last) });
        st.finished = true;
    }
    job.changed.send_modify(|v| *v += 1);
}

/// One caller following a job; dropping it (the client went away) cancels the build when it
/// was the last one waiting.
struct Follower {
    inner: Arc<Inner>,
    job: Arc<Job>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = self.job.lock();
        st.waiters = st.waiters.saturating_sub(1);
        if st.waiters > 0 || st.finished {
            return;
        }
        if let Some(abort) = st.abort.take() {
            abort.abort();
        }
        st.finished = true;
        let record = st.record;
        drop(st);
        if jobs
            .get(&self.job.image)
            .is_some_and(|j| Arc::ptr_eq(j, &self.job))
        {
            jobs.remove(&self.job.image);
        }
        drop(jobs);
        if let Some(r) = record {
            self.inner
                .records
                .finish(r, "cancelled", Some("every client disconnected".into()));
        }
    }
}

pub(super) fn follow(inner: Arc<Inner>, job: Arc<Job>) -> BuildStream {
    let rx = job.changed.subscribe();
    let follower = Follower { inner, job };
    let stream =
        futures_util::stream::unfold((follower, rx, 0usize), |(f, mut rx, next)| async move {
            loop {
                rx.borrow_and_update();
                {
                    let st = f.job.lock();
                    if let Some(ev) = st.events.get(next) {
                        let ev = ev.clone();
                        drop(st);
                        return Some((Ok(ev), (f, rx, next + 1)));
                    }
                    if st.finished {
                        return None;
                    }
                }
                if rx.changed().await.is_err() {
                    // The job is gone without a last event (cannot happen while we hold it).
                    return None;
                }
            }
        });
    Box::pin(stream)
}
