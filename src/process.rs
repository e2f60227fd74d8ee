//! Process-level plumbing shared by the commands.
//!
//! - **stdout is for data.** flytekit and user code print warnings, progress and chatter to stdout.
//!   Before Python starts we keep a private copy of the real stdout and point file descriptor 1 at
//!   stderr, so everything Python (or a subprocess it starts) writes lands on stderr, and only what
//!   `union` itself emits as data reaches stdout.
//! - **Ctrl-C and SIGTERM stop promptly** with exit code 130 (143 for SIGTERM), at every phase.
//!   We own both signals with a C-level handler ([`own_signals`]). Python's handlers would not do:
//!   they run only between bytecodes, so a signal during Rust work (a build, an upload) waited until
//!   the next Python call, and flytekit's own SIGINT handler turns it into `SystemExit(1)`. flytekit
//!   installs that handler when it is imported (and user code may install others), so the bridge
//!   takes the signals back after every call into Python and right after `import flytekit`.
//!
//!   By default the handler prints `error: interrupted`, the current phase's note (for example
//!   "nothing was registered") and exits at once: every phase before registration leaves nothing
//!   behind (builds and pushes stop when their connection closes, archives live in memory). Phases
//!   that must say what they leave behind (registering, following an execution) run
//!   [`cooperatively`](Cooperative): the first signal is recorded for the command to act on, a
//!   second one exits at once.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering};

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
    let text = union_diagnostics::redact::mask_url_credentials(text);
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

/// Write one line for the user on stderr (notes, warnings), with credentials in URLs masked: the
/// way the CLI's modules talk to the terminal outside progress reports and errors.
pub fn note(line: &str) {
    let text = union_diagnostics::redact::mask_url_credentials(line);
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.write_all(b"\n");
}

/// How a login tells the user what to do (open a URL, approve a code): on stderr, like notes.
pub fn login_notice() -> union_client::auth::Notify {
    std::sync::Arc::new(note)
}

/// The first signal received while a [`Cooperative`] section runs (0: none).
static PENDING: AtomicI32 = AtomicI32::new(0);
/// How many [`Cooperative`] sections are active.
static COOPERATIVE: AtomicUsize = AtomicUsize::new(0);
/// What an interruption leaves behind in the current phase, printed after `error: interrupted`.
static NOTE_PTR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static NOTE_LEN: AtomicUsize = AtomicUsize::new(0);
static OWNED: AtomicBool = AtomicBool::new(false);

/// The signals a command stops on.
const STOP_SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

extern "C" fn on_stop_signal(sig: libc::c_int) {
    if COOPERATIVE.load(Ordering::SeqCst) > 0
        && PENDING
            .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    {
        return; // the command stops at its next check and says what it leaves behind
    }
    let head: &[u8] = if sig == libc::SIGTERM {
        b"\nerror: terminated"
    } else {
        b"\nerror: interrupted"
    };
    let note_ptr = NOTE_PTR.load(Ordering::SeqCst);
    let note_len = NOTE_LEN.load(Ordering::SeqCst);
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the note is a &'static str set by
    // set_interrupt_note (pointer and length of the same static string).
    unsafe {
        libc::write(2, head.as_ptr().cast(), head.len());
        if !note_ptr.is_null() && note_len > 0 {
            libc::write(2, b": ".as_ptr().cast(), 2);
            libc::write(2, note_ptr.cast(), note_len);
        }
        libc::write(2, b"\n".as_ptr().cast(), 1);
        libc::_exit(128 + sig);
    }
}

/// Take SIGINT and SIGTERM (back) from whoever installed a handler: see the module docs.
pub fn own_signals() {
    OWNED.store(true, Ordering::SeqCst);
    for sig in STOP_SIGNALS {
        // SAFETY: installing a handler that only calls async-signal-safe functions and atomics.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as *const () as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

/// [`own_signals`] again if this process owns them (after Python code that may have replaced
/// the handlers ran).
pub fn reown_signals() {
    if OWNED.load(Ordering::SeqCst) {
        own_signals();
    }
}

/// What an interruption now leaves behind, printed with `error: interrupted` (for example
/// "nothing was registered"). Empty: just the error line.
pub fn set_interrupt_note(note: &'static str) {
    // The pointer is cleared while the length changes, so the handler never pairs one note's
    // pointer with another's length.
    NOTE_PTR.store(std::ptr::null_mut(), Ordering::SeqCst);
    NOTE_LEN.store(note.len(), Ordering::SeqCst);
    NOTE_PTR.store(note.as_ptr() as *mut u8, Ordering::SeqCst);
}

/// While alive, the first SIGINT/SIGTERM is only recorded ([`interrupted`]); the command stops
/// at its next check and says what it leaves behind. A second signal exits at once.
pub struct Cooperative(());

impl Cooperative {
    pub fn enter() -> Cooperative {
        COOPERATIVE.fetch_add(1, Ordering::SeqCst);
        Cooperative(())
    }
}

impl Drop for Cooperative {
    fn drop(&mut self) {
        COOPERATIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The signal received during a cooperative section, if any.
pub fn interrupted() -> Option<i32> {
    match PENDING.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Resolves with the signal number once a signal arrives in a cooperative section.
pub async fn interruption() -> i32 {
    loop {
        if let Some(sig) = interrupted() {
            return sig;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The exit code for a signal (128 + its number, as a shell reports it).
pub fn signal_exit_code(sig: i32) -> u8 {
    (128 + sig).clamp(0, 255) as u8
}

/// "interrupted" or "terminated", for messages about a signal.
pub fn signal_word(sig: i32) -> &'static str {
    if sig == libc::SIGTERM {
        "terminated"
    } else {
        "interrupted"
    }
}

use crate::env_vars::{
    TEST_PAUSE_AT as ENV_TEST_PAUSE_AT, TEST_PAUSE_UNTIL as ENV_TEST_PAUSE_UNTIL,
};

/// A hook for tests of interruptions and lost connections: with `UNION_TEST_PAUSE_AT=<point>`,
/// a command that reaches `point` says so on stderr and waits there until a signal arrives (in a
/// cooperative section; elsewhere the signal ends the process) or the file named by
/// `UNION_TEST_PAUSE_UNTIL` exists. Tests then act at an exact phase instead of guessing with
/// timing. Without the variable this is one environment lookup.
pub fn test_pause_point(point: &str) {
    match std::env::var_os(ENV_TEST_PAUSE_AT) {
        Some(want) if want == point => {}
        _ => return,
    }
    note(&format!("union: paused at {point} ({ENV_TEST_PAUSE_AT})"));
    let until = std::env::var_os(ENV_TEST_PAUSE_UNTIL).map(std::path::PathBuf::from);
    loop {
        if interrupted().is_some() || until.as_ref().is_some_and(|p| p.exists()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
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
