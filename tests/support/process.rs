//! Waiting for conditions (never for a fixed time), and child processes' output and signals.

/// Wait for `cond` to hold, checking every 50 ms; panics with `what` after `deadline`. The
/// deadline is generous on purpose: it only bounds a hang, it never decides a result.
pub fn wait_until(what: &str, deadline: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A child process's stderr, collected by a thread as it arrives.
pub struct Captured {
    text: std::sync::Arc<std::sync::Mutex<String>>,
    closed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Captured {
    /// Start collecting `child`'s stderr (which must be piped).
    pub fn stderr_of(child: &mut std::process::Child) -> Captured {
        use std::io::Read;
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (sink, done) = (text.clone(), closed.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Captured { text, closed }
    }

    /// What arrived so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Everything, once the process closed its stderr (it exited).
    pub fn all(&self) -> String {
        wait_until(
            "stderr to close",
            std::time::Duration::from_secs(300),
            || self.closed.load(std::sync::atomic::Ordering::SeqCst),
        );
        self.text()
    }

    /// Wait until the text contains `needle` (the process printed it).
    pub fn wait_for(&self, needle: &str, deadline: std::time::Duration) {
        wait_until(&format!("{needle:?} on stderr"), deadline, || {
            self.text().contains(needle)
        });
    }
}

/// Wait for `child` to exit (a deadline bounds a hang; it decides nothing).
pub fn wait_exit(
    child: &mut std::process::Child,
    deadline: std::time::Duration,
) -> std::process::ExitStatus {
    let mut status = None;
    wait_until("the process to exit", deadline, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    status.unwrap()
}

/// Send `sig` to `child`.
pub fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, sig) };
}
