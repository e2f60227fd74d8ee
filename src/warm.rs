//! The warm interpreter: after a command that imported flytekit, `union` leaves a background
//! server that has imported flytekit once; later commands hand it their arguments and their
//! stdin/stdout/stderr (over a Unix socket, with SCM_RIGHTS), and it forks a child that runs the
//! command exactly as a cold `union` would, minus the ~0.6 s `import flytekit`. The same idea as
//! Gradle's or Bazel's daemon.
//!
//! On by default, except in CI (`CI` set) or with `UNION_WARM=0`; `UNION_WARM=1` forces it on.
//!
//! Correctness first:
//! - a server only serves commands from the same working directory, the same environment
//!   variables, the same virtualenv and the same `union` binary it was started with: all of them
//!   are in the socket's name;
//! - before each command it checks every file it has loaded (flytekit, its plugins, the standard
//!   library: ~1,300 `stat`s, a couple of milliseconds); if one changed (`pip install -U`, an edit
//!   to an editable install), it exits and the command runs cold;
//! - the fork goes through CPython's `PyOS_BeforeFork`/`PyOS_AfterFork_*` (reseeding `random`,
//!   resetting locks), the server runs no Python thread but its own (it refuses to serve if
//!   importing flytekit started one), and the child refreshes flytekit's default
//!   context (execution date, config, local directories) before running the command;
//! - commands run concurrently: each is its own child, and the server waits for none of them;
//! - anything unexpected before the command started falls back to running cold.
//!
//! Servers exit after 10 idle minutes (`UNION_WARM_IDLE_SECS`); `union warm status` lists them and
//! `union warm stop` stops them (a command in flight finishes first).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::env_vars::{
    WARM as ENV_ENABLE, WARM_DEBUG as ENV_DEBUG, WARM_IDLE_SECS as ENV_IDLE,
    WARM_READY_FD as ENV_READY,
};

fn idle_secs() -> i32 {
    std::env::var(ENV_IDLE)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(600)
}

/// Is the warm interpreter enabled for this process? `UNION_WARM` decides when set; otherwise it
/// is on, except in CI (where every run starts from scratch and a background process only costs).
pub fn enabled() -> bool {
    match std::env::var(ENV_ENABLE) {
        Ok(v) if !v.trim().is_empty() => match union_client::config::parse_bool(&v) {
            Some(b) => b,
            None => {
                crate::process::note(&format!(
                    "warning: {ENV_ENABLE}={v:?} is not a boolean (use 1 or 0); the warm interpreter is off"
                ));
                false
            }
        },
        _ => !union_client::config::in_ci(),
    }
}

fn mtime(p: &Path) -> String {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .map(|t| format!("{:?}", t))
        .unwrap_or_default()
}

/// Where this user's servers keep their sockets and descriptions.
fn runtime_dir() -> Option<PathBuf> {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = std::env::temp_dir().join(format!("union-warm-{uid}"));
    std::fs::create_dir_all(&dir).ok()?;
    // Ours, a real directory (not a symlink someone planted), and private: anyone who can reach
    // a socket in it can run commands as us.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    if !meta.is_dir() || meta.uid() != uid {
        return None;
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).ok()?;
    Some(dir)
}

/// The socket for this binary, environment, working directory and virtualenv.
fn socket_path(env: &crate::python::PythonEnv) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let cwd = std::env::current_dir().ok()?;
    let mut h = Md5::new();
    h.update(exe.as_os_str().as_encoded_bytes());
    h.update(mtime(&exe).as_bytes());
    h.update(cwd.as_os_str().as_encoded_bytes());
    h.update(env.prefix.as_os_str().as_encoded_bytes());
    // Installing or removing a package changes site-packages' mtime.
    for lib in ["lib/python3.11/site-packages", "lib"] {
        h.update(mtime(&env.prefix.join(lib)).as_bytes());
    }
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        // Shell bookkeeping and hyperfine's per-run randomized variable are not configuration.
        .filter(|(k, _)| {
            let k = k.to_str().unwrap_or("");
            // UNION_WARM_DEBUG travels with each request instead: turning it on must not
            // change which server answers.
            !matches!(k, "_" | "OLDPWD" | "SHLVL" | "PWD" | ENV_DEBUG)
                && !k.starts_with("HYPERFINE_")
        })
        .collect();
    vars.sort();
    for (k, v) in vars {
        h.update(k.as_encoded_bytes());
        h.update([0]);
        h.update(v.as_encoded_bytes());
        h.update([0]);
    }
    let key: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Some(runtime_dir()?.join(format!("{key}.sock")))
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

fn send_fds(sock: &UnixStream, payload: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    // SAFETY: a standard sendmsg with one SCM_RIGHTS control message sized for `fds`.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut _,
            iov_len: payload.len(),
        };
        let space = libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) as usize;
        let mut cbuf = vec![0u8; space];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr(),
            libc::CMSG_DATA(cmsg).cast::<RawFd>(),
            fds.len(),
        );
        if libc::sendmsg(sock.as_raw_fd(), &msg, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn recv_fds(
    sock: &UnixStream,
    buf: &mut [u8],
    max_fds: usize,
) -> std::io::Result<(usize, Vec<RawFd>)> {
    // SAFETY: a standard recvmsg into buffers we own; control data parsed with the CMSG macros.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let space = libc::CMSG_SPACE((max_fds * std::mem::size_of::<RawFd>()) as u32) as usize;
        let mut cbuf = vec![0u8; space];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // The server's SIGCHLD handler interrupts a receive with a timeout even with SA_RESTART.
        let n = loop {
            let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n >= 0 {
                break n;
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        };
        let mut fds = Vec::new();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..count {
                    fds.push(*data.add(i));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Ok((n as usize, fds))
    }
}

/// What a client sends after the descriptors.
#[derive(Serialize, Deserialize)]
struct Request {
    args: Vec<String>,
    umask: u32,
    /// UNION_WARM_DEBUG is set on the client.
    debug: bool,
}

/// The outcome of offering a command to a warm interpreter.
pub enum Delegation {
    /// A warm interpreter ran it; this is its exit status.
    Served(ExitCode),
    /// Run it here. With a socket path: no server answered there, so start one afterwards (for
    /// the next command; not before, so that its import does not compete with this one).
    Cold(Option<PathBuf>),
}

/// Hand this command to a warm interpreter if one is running.
pub fn try_delegate(argv: &[OsString]) -> Delegation {
    if !enabled() {
        return Delegation::Cold(None);
    }
    let Ok(env) = crate::python::env::locate() else {
        return Delegation::Cold(None);
    };
    let Some(path) = socket_path(&env) else {
        return Delegation::Cold(None);
    };
    match delegate(&path, argv) {
        Some(code) => Delegation::Served(code),
        None => Delegation::Cold(Some(path)),
    }
}

fn delegate(path: &Path, argv: &[OsString]) -> Option<ExitCode> {
    let mut sock = UnixStream::connect(path).ok()?;
    // SAFETY: umask(2) cannot fail; read it by setting and restoring it.
    let umask = unsafe {
        let m = libc::umask(0o022);
        libc::umask(m);
        m
    };
    let request = Request {
        args: argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        umask: umask as u32,
        debug: std::env::var_os(ENV_DEBUG).is_some(),
    };
    let payload = serde_json::to_vec(&request).ok()?;
    let len = (payload.len() as u32).to_le_bytes();
    send_fds(&sock, &len, &[0, 1, 2]).ok()?;
    sock.write_all(&payload).ok()?;
    // A server that finds itself stale (or is stopping) closes the connection here: run cold.
    let mut pid = [0u8; 4];
    sock.read_exact(&mut pid).ok()?;
    CHILD.store(i32::from_le_bytes(pid), Ordering::SeqCst);
    // Ctrl-C, `kill`, a closed terminal: what would stop a cold command stops the served one.
    // SAFETY: installing a handler that only calls kill(2).
    unsafe {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = forward_signal as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
    // From here on the command runs there: its exit status is ours.
    let mut code = [0u8; 4];
    loop {
        match sock.read_exact(&mut code) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                crate::process::note(&format!(
                    "error: the warm interpreter stopped unexpectedly; run again, or set {ENV_ENABLE}=0"
                ));
                return Some(ExitCode::from(1));
            }
        }
    }
    Some(ExitCode::from(i32::from_le_bytes(code).clamp(0, 255) as u8))
}

/// The descriptor on which a starting server says it has described itself (see [`start_server`]).
const READY_FD: RawFd = 3;

/// Start a server at `path` in the background, detached from this terminal, and return once it
/// has described itself (a few milliseconds, before it imports anything): `union warm status`
/// and `union warm stop` right after this command see it.
pub fn start_server(path: &Path) {
    use std::os::unix::process::CommandExt;
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut pipe = [0 as RawFd; 2];
    // SAFETY: creating a pipe we own; both ends close on exec unless moved below.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    let (read_end, write_end) = (pipe[0], pipe[1]);
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("__warm-server")
        .arg(path)
        .env(ENV_READY, READY_FD.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: in the child before exec, only async-signal-safe calls: setsid detaches it from our
    // terminal and process group; dup2 gives it the pipe's write end (without close-on-exec).
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::dup2(write_end, READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    // SAFETY: closing our copy of the write end, so that the read below ends if the server dies.
    unsafe { libc::close(write_end) };
    if spawned.is_ok() {
        let mut fds = [libc::pollfd {
            fd: read_end,
            events: libc::POLLIN,
            revents: 0,
        }];
        // A byte (described) or end of file (it exited); 5 s bounds a machine too busy to tell.
        // SAFETY: poll and read on our own descriptor.
        unsafe {
            if libc::poll(fds.as_mut_ptr(), 1, 5000) > 0 {
                let mut b = [0u8; 1];
                libc::read(read_end, b.as_mut_ptr().cast(), 1);
            }
        }
    }
    // SAFETY: closing our descriptor.
    unsafe { libc::close(read_end) };
}

/// In a server: tell the command that started it that it is described (see [`start_server`]).
fn signal_ready() {
    if std::env::var_os(ENV_READY).is_some() {
        // SAFETY: the descriptor start_server handed us; written once, then closed.
        unsafe {
            libc::write(READY_FD, [1u8].as_ptr().cast(), 1);
            libc::close(READY_FD);
        }
        // Single-threaded still (Python has not started): the commands it serves must not see it.
        std::env::remove_var(ENV_READY);
    }
}

/// A running server, as `union warm status` shows it (written next to its socket).
#[derive(Debug, Serialize, Deserialize)]
pub struct ServerInfo {
    pub pid: i32,
    pub directory: PathBuf,
    pub venv: PathBuf,
    pub flytekit: String,
    /// Seconds since the Unix epoch.
    pub started: u64,
    #[serde(default)]
    pub socket: PathBuf,
}

fn info_path(socket: &Path) -> PathBuf {
    socket.with_extension("json")
}

/// Size and modification time of every file the server loaded, to notice changes.
struct Snapshot(Vec<(PathBuf, Option<(std::time::SystemTime, u64)>)>);

impl Snapshot {
    fn stamp(p: &Path) -> Option<(std::time::SystemTime, u64)> {
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len()))
    }
    fn take(files: Vec<PathBuf>) -> Snapshot {
        Snapshot(
            files
                .into_iter()
                .map(|f| {
                    let s = Self::stamp(&f);
                    (f, s)
                })
                .collect(),
        )
    }
    /// The first file that changed since the snapshot, if any.
    fn changed(&self) -> Option<&Path> {
        self.0
            .iter()
            .find(|(f, s)| Self::stamp(f) != *s)
            .map(|(f, _)| f.as_path())
    }
}

static TERMINATING: AtomicBool = AtomicBool::new(false);
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_server_signal(sig: libc::c_int) {
    if sig == libc::SIGTERM || sig == libc::SIGINT {
        TERMINATING.store(true, Ordering::SeqCst);
    }
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking, a full pipe is fine.
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

const SERVER_SIGNALS: [libc::c_int; 3] = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT];

/// The dispositions the server replaced (Python's own SIGINT handler among them), for children.
static PREVIOUS: std::sync::Mutex<Vec<(libc::c_int, libc::sigaction)>> =
    std::sync::Mutex::new(Vec::new());

fn install_server_signals(wake_write: RawFd) {
    WAKE_FD.store(wake_write, Ordering::SeqCst);
    let mut previous = PREVIOUS.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: handlers that only store an atomic and write(2) to a pipe.
    unsafe {
        for sig in SERVER_SIGNALS {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_server_signal as *const () as usize;
            action.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, &action, &mut old);
            previous.push((sig, old));
        }
    }
}

/// In a child: the dispositions a cold start would have.
fn restore_signals() {
    let previous = PREVIOUS.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: restoring dispositions saved by install_server_signals, in a single-threaded child.
    unsafe {
        for (sig, old) in previous.iter() {
            libc::sigaction(*sig, old, std::ptr::null_mut());
        }
    }
}

/// What a served command line becomes: the parsed command, run, its error reported (the binary
/// passes its own `execute`, so this module does not depend on the commands it serves).
pub type Execute = fn(crate::cli::Cli) -> ExitCode;

/// `union __warm-server SOCKET`: import flytekit once, then fork a child per command, which
/// parses the command line it was sent and hands it to `execute`.
pub fn serve(path: &Path, execute: Execute) -> ExitCode {
    // One server per socket: a second one started by a concurrent cold command leaves at once.
    let Ok(lock) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.with_extension("lock"))
    else {
        return ExitCode::SUCCESS;
    };
    // SAFETY: flock on a descriptor we own; released when the process exits.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return ExitCode::SUCCESS;
    }
    let _ = std::fs::remove_file(path);
    let Ok(listener) = UnixListener::bind(path) else {
        return ExitCode::SUCCESS;
    };
    let cleanup = || {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(info_path(path));
        let _ = std::fs::remove_file(path.with_extension("lock"));
    };
    let Ok(env) = crate::python::env::locate() else {
        cleanup();
        return ExitCode::SUCCESS;
    };
    // Described from the start, so that `union warm stop` also reaches a server still importing.
    let mut info = ServerInfo {
        pid: std::process::id() as i32,
        directory: std::env::current_dir().unwrap_or_default(),
        venv: env.prefix.clone(),
        flytekit: "(starting)".into(),
        started: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        socket: path.to_path_buf(),
    };
    let describe = |info: &ServerInfo| {
        if let Ok(text) = serde_json::to_vec_pretty(info) {
            let _ = std::fs::write(info_path(path), text);
        }
    };
    describe(&info);
    signal_ready();
    let Ok(session) = crate::python::PythonSession::start(env) else {
        cleanup();
        return ExitCode::SUCCESS;
    };
    let Ok(state) = session.warm_up() else {
        cleanup();
        return ExitCode::SUCCESS;
    };
    // fork(2) copies only the calling thread: if importing flytekit (or a plugin it loads)
    // started a Python thread, children could inherit Python-level locks nobody will release.
    // Serve nothing then. (Native pools such as OpenBLAS's, which numpy starts at import, stop
    // themselves around fork through pthread_atfork.)
    if state.python_threads != 1 {
        cleanup();
        return ExitCode::SUCCESS;
    }
    let mut files = state.files;
    if let Ok(exe) = std::env::current_exe() {
        files.push(exe);
    }
    let snapshot = Snapshot::take(files);
    info.flytekit = state.flytekit;
    describe(&info);
    let mut pipe = [0 as RawFd; 2];
    // SAFETY: creating a pipe we own.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        cleanup();
        return ExitCode::SUCCESS;
    }
    install_server_signals(pipe[1]);
    // Commands in flight: child pid -> the client's connection, which gets the exit status.
    let mut running: HashMap<i32, UnixStream> = HashMap::new();
    let mut accepting = true;
    loop {
        reap(&mut running);
        if TERMINATING.load(Ordering::SeqCst) && accepting {
            accepting = false;
            cleanup();
        }
        if !accepting && running.is_empty() {
            break;
        }
        let mut fds = [
            libc::pollfd {
                fd: pipe[0],
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: listener.as_raw_fd(),
                events: if accepting { libc::POLLIN } else { 0 },
                revents: 0,
            },
        ];
        let timeout = if running.is_empty() {
            idle_secs().saturating_mul(1000)
        } else {
            -1
        };
        // SAFETY: poll on our own descriptors.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if ready == 0 {
            break; // idle
        }
        if ready < 0 {
            continue; // EINTR: a signal; the loop looks at what it changed
        }
        if fds[0].revents != 0 {
            let mut buf = [0u8; 64];
            // SAFETY: draining our non-blocking pipe.
            while unsafe { libc::read(pipe[0], buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        }
        if accepting && fds[1].revents & libc::POLLIN != 0 {
            let Ok((conn, _)) = listener.accept() else {
                continue;
            };
            if snapshot.changed().is_some() {
                // flytekit or another loaded file changed on disk: this server's memory is out of
                // date. Refuse (the client runs cold and starts a fresh server) and leave.
                drop(conn);
                accepting = false;
                cleanup();
                continue;
            }
            let extra: Vec<RawFd> = running
                .values()
                .map(|c| c.as_raw_fd())
                .chain(pipe)
                .chain([lock.as_raw_fd()])
                .collect();
            if let Some((pid, conn)) = start_one(&listener, conn, &extra, execute) {
                running.insert(pid, conn);
            }
        }
    }
    cleanup();
    ExitCode::SUCCESS
}

/// Collect finished children and tell their clients how they ended.
fn reap(running: &mut HashMap<i32, UnixStream>) {
    loop {
        let mut status = 0;
        // SAFETY: reaping our own children without blocking.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            1
        };
        if let Some(mut conn) = running.remove(&pid) {
            let _ = conn.write_all(&code.to_le_bytes());
        }
    }
}

/// Receive one request and fork its child. Returns the child's pid and the client's connection.
fn start_one(
    listener: &UnixListener,
    mut conn: UnixStream,
    inherited: &[RawFd],
    execute: Execute,
) -> Option<(i32, UnixStream)> {
    // A client that connects and says nothing must not hold the server up.
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let mut len = [0u8; 4];
    let (n, fds) = recv_fds(&conn, &mut len, 3).ok()?;
    let close_all = |fds: &[RawFd]| {
        for fd in fds {
            // SAFETY: closing descriptors we received and own.
            unsafe { libc::close(*fd) };
        }
    };
    if n != 4 || fds.len() != 3 {
        close_all(&fds);
        return None;
    }
    let mut payload = vec![0u8; u32::from_le_bytes(len) as usize];
    if conn.read_exact(&mut payload).is_err() {
        close_all(&fds);
        return None;
    }
    let Ok(request) = serde_json::from_slice::<Request>(&payload) else {
        close_all(&fds);
        return None;
    };
    let pid = crate::python::fork_interpreter();
    if pid == 0 {
        // The child: become the client's command.
        restore_signals();
        // SAFETY: standard descriptor plumbing in a freshly forked single-threaded child.
        unsafe {
            libc::close(listener.as_raw_fd());
            for fd in inherited {
                libc::close(*fd);
            }
            for (i, fd) in fds.iter().enumerate() {
                libc::dup2(*fd, i as RawFd);
                libc::close(*fd);
            }
            libc::umask(request.umask as libc::mode_t);
        }
        crate::process::reset_after_fork();
        if request.debug {
            crate::process::note(&format!(
                "union: served by the warm interpreter (pid {})",
                std::process::id()
            ));
        }
        use clap::Parser;
        let code = match crate::cli::Cli::try_parse_from(&request.args) {
            Ok(cli) => execute(cli),
            Err(e) => {
                let _ = e.print();
                ExitCode::from(if e.use_stderr() { 2 } else { 0 })
            }
        };
        // Tell the client now rather than after this process's teardown (a few milliseconds for
        // a large address space); the server still reports deaths by signal.
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        let n = crate::process::exit_number(code);
        let _ = (&conn).write_all(&n.to_le_bytes());
        crate::process::flush_and_exit(code);
    }
    close_all(&fds);
    if pid < 0 {
        return None;
    }
    let _ = conn.set_read_timeout(None);
    conn.write_all(&pid.to_le_bytes()).ok()?;
    Some((pid, conn))
}

fn alive_server(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    if pid <= 0 || unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("__warm-server"))
        .unwrap_or(true)
}

/// The running servers of this user (descriptions of dead ones are removed).
pub fn servers() -> Vec<ServerInfo> {
    let Some(dir) = runtime_dir() else {
        return vec![];
    };
    let mut out = vec![];
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.extension().and_then(|e| e.to_str()) == Some("sock")
            && !p.with_extension("json").exists()
            && matches!(UnixStream::connect(&p), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            let _ = std::fs::remove_file(&p); // left by a server that died
            continue;
        }
        if p.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Ok(info) = std::fs::read(&p)
            .map_err(|_| ())
            .and_then(|b| serde_json::from_slice::<ServerInfo>(&b).map_err(|_| ()))
        else {
            continue;
        };
        if alive_server(info.pid) {
            out.push(info);
        } else {
            let _ = std::fs::remove_file(&p);
            let _ = std::fs::remove_file(p.with_extension("sock"));
        }
    }
    out.sort_by_key(|s| s.started);
    out
}

/// Ask every running server to stop (commands in flight finish first). Returns how many.
pub fn stop_all() -> usize {
    let mut n = 0;
    for s in servers() {
        // SAFETY: signalling a process we verified is one of our servers.
        if unsafe { libc::kill(s.pid, libc::SIGTERM) } == 0 {
            n += 1;
        }
    }
    n
}
