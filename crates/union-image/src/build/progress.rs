//! BuildKit progress: the `moby.buildkit.trace` messages of an HTTP build turned into
//! [`BuildEvent`]s, and the failing step's last lines kept for the error.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bollard::models::{BuildInfo, BuildInfoAux};

use super::engine::stream_message;
use super::{BuildError, BuildEvent, BuildReporter, FAILED_STEP_LINES};

/// One BuildKit vertex (build step) as the trace describes it.
#[derive(Debug, Default)]
struct Vertex {
    name: String,
    cached: bool,
    started: bool,
    completed: bool,
    error: String,
    /// The last lines of its output.
    lines: VecDeque<String>,
    /// A partial last line.
    partial: String,
}

/// Follows `moby.buildkit.trace` messages: step names, states and output per step.
#[derive(Debug, Default)]
pub(super) struct Trace {
    vertices: HashMap<String, Vertex>,
    /// Digests in first-seen order.
    order: Vec<String>,
    /// Plain `stream` text (legacy builder, or engine messages).
    stream_tail: VecDeque<String>,
}

impl Trace {
    pub(super) fn absorb(&mut self, image: &str, info: BuildInfo, reporter: &dyn BuildReporter) {
        if let Some(text) = info.stream {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                push_line(&mut self.stream_tail, line.to_string());
            }
        }
        let Some(BuildInfoAux::BuildKit(status)) = info.aux else {
            return;
        };
        for v in status.vertexes {
            if !self.vertices.contains_key(&v.digest) {
                self.order.push(v.digest.clone());
            }
            let entry = self.vertices.entry(v.digest.clone()).or_default();
            entry.name = display_step(&v.name);
            entry.cached |= v.cached;
            if v.started.is_some() && !entry.started {
                entry.started = true;
                reporter.event(
                    image,
                    &BuildEvent::StepStarted {
                        step: entry.name.clone(),
                        cached: v.cached,
                    },
                );
            }
            if !v.error.is_empty() {
                entry.error = v.error.clone();
            }
            if v.completed.is_some() && !entry.completed {
                entry.completed = true;
                let duration = match (&v.started, &v.completed) {
                    (Some(s), Some(c)) => {
                        let nanos = (c.seconds - s.seconds) as i128 * 1_000_000_000
                            + (c.nanos - s.nanos) as i128;
                        u64::try_from(nanos).ok().map(Duration::from_nanos)
                    }
                    _ => None,
                };
                reporter.event(
                    image,
                    &BuildEvent::StepDone {
                        step: entry.name.clone(),
                        cached: entry.cached,
                        duration,
                    },
                );
            }
        }
        for log in status.logs {
            let entry = self.vertices.entry(log.vertex.clone()).or_default();
            let text = String::from_utf8_lossy(&log.msg);
            let mut buf = std::mem::take(&mut entry.partial);
            buf.push_str(&text);
            let mut rest = buf.as_str();
            while let Some(i) = rest.find(['\n', '\r']) {
                let line = rest[..i].to_string();
                rest = &rest[i + 1..];
                if line.trim().is_empty() {
                    continue;
                }
                reporter.event(
                    image,
                    &BuildEvent::Log {
                        step: entry.name.clone(),
                        line: line.clone(),
                    },
                );
                push_line(&mut entry.lines, line);
            }
            entry.partial = rest.to_string();
        }
    }

    /// Whether a step has failed (the build's own error, not the connection's).
    pub(super) fn step_failed(&self) -> bool {
        self.failed_vertex().is_some()
    }

    /// The failing vertex, if the trace named one.
    fn failed_vertex(&self) -> Option<&Vertex> {
        self.order
            .iter()
            .filter_map(|d| self.vertices.get(d))
            .find(|v| !v.error.is_empty())
    }

    pub(super) fn failure(&mut self, image: &str, e: bollard::errors::Error) -> BuildError {
        let message = stream_message(e);
        if let Some(v) = self.failed_vertex() {
            let mut lines: Vec<String> = v.lines.iter().cloned().collect();
            if !v.partial.trim().is_empty() {
                lines.push(v.partial.clone());
            }
            return BuildError::StepFailed {
                image: image.to_string(),
                step: v.name.clone(),
                message,
                output: lines.join("\n"),
            };
        }
        BuildError::Build {
            image: image.to_string(),
            message,
        }
    }

    pub(super) fn pending_error(&self, image: &str) -> Option<BuildError> {
        let v = self.failed_vertex()?;
        Some(BuildError::StepFailed {
            image: image.to_string(),
            step: v.name.clone(),
            message: v.error.clone(),
            output: v.lines.iter().cloned().collect::<Vec<_>>().join("\n"),
        })
    }
}

/// A step name as users read it: BuildKit's vertex name without the `--mount=` options.
pub fn display_step(name: &str) -> String {
    name.split_whitespace()
        .filter(|w| !w.starts_with("--mount="))
        .collect::<Vec<_>>()
        .join(" ")
}

fn push_line(buf: &mut VecDeque<String>, line: String) {
    if buf.len() == FAILED_STEP_LINES {
        buf.pop_front();
    }
    buf.push_back(line);
}
