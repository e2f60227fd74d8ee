//! Process-level plumbing shared by the commands that start Python.
//!
//! - **stdout is for data.** flytekit and user code print warnings, progress and chatter to stdout.
//!   Before Python starts we keep a private copy of the real stdout and point file descriptor 1 at
//!   stderr, so everything Python (or a subprocess it starts) writes lands on stderr, and only what
//!   `union` itself emits as data reaches stdout.
//! - **Ctrl-C stops promptly with exit code 130.** flytekit installs its own SIGINT handler at
//!   import (it raises `SystemExit(1)` at the next bytecode, and does nothing while Rust code runs).
//!   We own SIGINT instead: our handler exits immediately with 130. It is (re)installed after user
//!   modules are imported, since importing flytekit replaces it.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

static DATA_FD: AtomicI32 = AtomicI32::new(-1);

/// Keep a private duplicate of stdout for data and send fd 1 to stderr. Idempotent.
pub fn reserve_stdout_for_data() {
    if DATA_FD.load(Ordering::SeqCst) >= 0 {
        return;
    }
    // SAFETY: dup/dup2 on the process's own standard descriptors; failures leave stdout as it is.
    unsafe {
        let saved = libc::dup(1);
        if saved < 0 {
            return;
        }
        libc::fcntl(saved, libc::F_SETFD, libc::FD_CLOEXEC);
        if libc::dup2(2, 1) < 0 {
            libc::close(saved);
            return;
        }
        DATA_FD.store(saved, Ordering::SeqCst);
    }
}

/// Write data (results, listings) to the real stdout.
pub fn write_data(text: &str) -> std::io::Result<()> {
    let fd: RawFd = DATA_FD.load(Ordering::SeqCst);
    if fd < 0 {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        return out.flush();
    }
    // SAFETY: `fd` is our private duplicate of stdout, alive for the whole process; ManuallyDrop
    // keeps the File from closing it.
    let mut f = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
    f.write_all(text.as_bytes())?;
    f.flush()
}

extern "C" fn on_sigint(_: libc::c_int) {
    const MSG: &[u8] = b"\nerror: interrupted\n";
    // SAFETY: write(2) and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::_exit(130);
    }
}

/// Make Ctrl-C (SIGINT) exit at once with code 130, whatever Python installed before.
pub fn own_sigint() {
    // SAFETY: installing a handler that only calls async-signal-safe functions.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as *const () as usize;
        action.sa_flags = 0;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
}

/// After fork in a warm interpreter's child: forget the parent's private stdout copy.
pub fn reset_after_fork() {
    DATA_FD.store(-1, Ordering::SeqCst);
}

/// Flush Rust's streams and exit with `code` (without running Python's finalization).
pub fn flush_and_exit(code: std::process::ExitCode) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(exit_number(code))
}

/// The number an `ExitCode` stands for (ExitCode does not expose it).
pub fn exit_number(code: std::process::ExitCode) -> i32 {
    (0u8..=255)
        .find(|n| std::process::ExitCode::from(*n) == code)
        .map(i32::from)
        .unwrap_or(1)
}
