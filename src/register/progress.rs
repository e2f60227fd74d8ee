//! Progress for multi-phase commands, on stderr: one line per phase with its result, and a line
//! per item only when asked (`--verbose`). `--quiet` silences everything but warnings.
//! Library code reports here; it never prints directly.

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

/// How much to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Phase-by-phase progress on stderr.
pub struct Progress {
    verbosity: Verbosity,
    current: Mutex<Option<(String, Instant)>>,
}

impl Progress {
    pub fn new(verbosity: Verbosity) -> Self {
        Progress {
            verbosity,
            current: Mutex::new(None),
        }
    }

    /// How much this reporter shows.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    fn out(&self, line: &str) {
        let stderr = std::io::stderr();
        let mut e = stderr.lock();
        let _ = writeln!(
            e,
            "{}",
            union_diagnostics::redact::mask_url_credentials(line)
        );
    }

    /// A phase starts ("Packaging code").
    pub fn phase(&self, name: &str) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((prev, _)) = cur.take() {
            if self.verbosity != Verbosity::Quiet {
                self.out(&format!("{prev}: done"));
            }
        }
        *cur = Some((name.to_string(), Instant::now()));
        if self.verbosity == Verbosity::Verbose {
            self.out(&format!("{name}…"));
        }
    }

    /// The current phase ended with a summary ("12 files, 3.1 KiB").
    pub fn done(&self, summary: &str) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((name, started)) = cur.take() {
            if self.verbosity != Verbosity::Quiet {
                let ms = started.elapsed().as_millis();
                self.out(&format!("{name}: {summary} ({ms} ms)"));
            }
        }
    }

    /// One item of the current phase (shown with --verbose).
    pub fn item(&self, what: &str, status: &str) {
        if self.verbosity == Verbosity::Verbose {
            self.out(&format!("  {what}: {status}"));
        }
    }

    /// Something the user should know, shown even with --quiet.
    pub fn warn(&self, msg: &str) {
        self.out(&format!("warning: {msg}"));
    }

    /// A note shown unless --quiet.
    pub fn note(&self, msg: &str) {
        if self.verbosity != Verbosity::Quiet {
            self.out(msg);
        }
    }
}

/// The one reporter of image checks and builds, for `build`, `register` and `run --remote`:
/// spinners on a terminal (outside CI), lines otherwise. Images that already exist are shown
/// only with `--verbose` (a phase line sums them up); builds always are, since they take time.
pub struct ImageReporter {
    verbosity: Verbosity,
    spinners: Option<Spinners>,
}

struct Spinners {
    multi: indicatif::MultiProgress,
    bars: Mutex<Vec<(String, indicatif::ProgressBar)>>,
}

impl ImageReporter {
    pub fn new(verbosity: Verbosity) -> Self {
        use std::io::IsTerminal;
        let spinners = (verbosity != Verbosity::Quiet
            && std::io::stderr().is_terminal()
            && !union_client::config::in_ci())
        .then(|| Spinners {
            multi: indicatif::MultiProgress::new(),
            bars: Mutex::new(Vec::new()),
        });
        ImageReporter {
            verbosity,
            spinners,
        }
    }

    fn line(&self, image: &str, text: &str) {
        let stderr = std::io::stderr();
        let mut e = stderr.lock();
        let _ = writeln!(
            e,
            "  {image}: {}",
            union_diagnostics::redact::mask_url_credentials(text)
        );
    }

    fn bar(&self, s: &Spinners, image: &str) -> indicatif::ProgressBar {
        let mut bars = s.bars.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, b)) = bars.iter().find(|(n, _)| n == image) {
            return b.clone();
        }
        let bar = s.multi.add(indicatif::ProgressBar::new_spinner());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {prefix} {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_prefix(image.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bars.push((image.to_string(), bar.clone()));
        bar
    }
}

impl union_image::build::BuildReporter for ImageReporter {
    fn started(&self, image: &str) {
        match &self.spinners {
            Some(s) => self.bar(s, image).set_message("checking"),
            None if self.verbosity == Verbosity::Verbose => self.line(image, "checking"),
            None => {}
        }
    }

    fn event(&self, image: &str, event: &union_image::build::BuildEvent) {
        use union_image::build::BuildEvent;
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        if let Some(s) = &self.spinners {
            let msg = match event {
                BuildEvent::StepStarted { step, .. } => step.clone(),
                BuildEvent::Log { line, .. } => line.clone(),
                BuildEvent::Push { status, .. } => format!("push: {status}"),
                BuildEvent::StepDone { .. } => return,
            };
            self.bar(s, image)
                .set_message(union_diagnostics::redact::mask_url_credentials(&msg).into_owned());
            return;
        }
        match event {
            BuildEvent::StepStarted {
                step,
                cached: false,
            } if self.verbosity == Verbosity::Verbose => {
                self.line(image, &format!("running {step}"))
            }
            BuildEvent::StepDone {
                step,
                cached,
                duration,
            } if self.verbosity == Verbosity::Verbose && !step.starts_with("[internal]") => {
                let how = if *cached {
                    "cached".to_string()
                } else {
                    duration
                        .map(|d| format!("{:.1}s", d.as_secs_f64()))
                        .unwrap_or_default()
                };
                self.line(image, &format!("{step} {how}"));
            }
            BuildEvent::Push { status, .. }
                if (status.starts_with("Pushed") || status.contains("digest"))
                    && self.verbosity == Verbosity::Verbose =>
            {
                self.line(image, &format!("push: {status}"));
            }
            _ => {}
        }
    }

    fn finished(
        &self,
        image: &str,
        result: Result<&union_image::build::Outcome, &union_image::build::BuildError>,
    ) {
        use union_image::build::Outcome;
        let text = match result {
            Ok(Outcome::Exists) => "exists".to_string(),
            Ok(Outcome::Built { pushed, duration }) => format!(
                "{} in {:.1}s",
                if *pushed { "built and pushed" } else { "built" },
                duration.as_secs_f64()
            ),
            Err(_) => "failed".to_string(),
        };
        match &self.spinners {
            Some(s) => self.bar(s, image).finish_with_message(text),
            None => {
                let shown = match result {
                    Ok(Outcome::Exists) => self.verbosity == Verbosity::Verbose,
                    _ => self.verbosity != Verbosity::Quiet,
                };
                if shown {
                    self.line(image, &text);
                }
            }
        }
    }
}
