//! An opt-in warm interpreter (`UNION_WARM=1`): the first Python command starts a background
//! `union` process that has imported flytekit once; later commands hand it their arguments and
//! their stdin/stdout/stderr (over a Unix socket, with SCM_RIGHTS), and it forks a child that runs
//! the command exactly as a cold `union` would, minus the ~0.8 s `import flytekit`.
//!
//! Correctness first: a server only serves commands from the same working directory, the same
//! environment variables, the same virtualenv (and installed packages) and the same `union`
//! binary it was started with: all of them are in the socket's name. The fork goes through
//! CPython's `PyOS_BeforeFork`/`PyOS_AfterFork_*` (reseeding `random`, resetting locks), and the
//! server is single-threaded. Anything unexpected on the client side before the command started
//! falls back to running cold. Servers exit after 10 idle minutes
//! (`UNION_WARM_IDLE_SECS`).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};

use md5::{Digest, Md5};

/// Opt-in switch.
pub const ENV_ENABLE: &str = "UNION_WARM";
/// Print a line on stderr when a command is served warm (for tests and curiosity).
pub const ENV_DEBUG: &str = "UNION_WARM_DEBUG";
/// How long an idle server lives, in seconds (default 600).
pub const ENV_IDLE: &str = "UNION_WARM_IDLE_SECS";

fn idle_secs() -> i32 {
    std::env::var(ENV_IDLE)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(600)
}

/// Is the warm interpreter enabled for this process?
pub fn enabled() -> bool {
    std::env::var(ENV_ENABLE)
        .map(|v| crate::config::parse_bool(&v) == Some(true))
        .unwrap_or(false)
}

fn mtime(p: &Path) -> String {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .map(|t| format!("{:?}", t))
        .unwrap_or_default()
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
            !matches!(k, "_" | "OLDPWD" | "SHLVL" | "PWD") && !k.starts_with("HYPERFINE_")
        })
        .collect();
    vars.sort();
    for (k, v) in vars {
        h.update(k.as_encoded_bytes());
        h.update([0]);
        h.update(v.as_encoded_bytes());
        h.update([0]);
    }
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = std::env::temp_dir().join(format!("union-warm-{uid}"));
    std::fs::create_dir_all(&dir).ok()?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).ok()?;
    let key: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Some(dir.join(format!("{key}.sock")))
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_sigint(_: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, libc::SIGINT) };
    }
}

fn send_fds(sock: &UnixStream, payload: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    // SAFETY: a standard sendmsg with one SCM_RIGHTS control message sized for `fds`.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut _,
            iov_len: payload.len(),
        };
        let space = libc::CMSG_SPACE((fds.len() * std::mem::size_of::<RawFd>()) as u32) as usize;
        let mut cbuf = vec![0u8; space];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN((fds.len() * std::mem::size_of::<RawFd>()) as u32) as _;
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
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
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

/// Hand this command to a warm interpreter if one is running; start one for next time if not.
/// `None` means: run it here (cold).
pub fn try_delegate(argv: &[OsString]) -> Option<ExitCode> {
    if !enabled() {
        return None;
    }
    let env = crate::python::env::locate().ok()?;
    let path = socket_path(&env)?;
    let mut sock = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(_) => {
            spawn_server(&path);
            return None;
        }
    };
    let args: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let payload = serde_json::to_vec(&args).ok()?;
    let len = (payload.len() as u32).to_le_bytes();
    send_fds(&sock, &len, &[0, 1, 2]).ok()?;
    sock.write_all(&payload).ok()?;
    let mut pid = [0u8; 4];
    sock.read_exact(&mut pid).ok()?;
    CHILD.store(i32::from_le_bytes(pid), Ordering::SeqCst);
    // SAFETY: installing a handler that only calls kill(2).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = forward_sigint as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
    // From here on the command runs there: its exit status is ours.
    let mut code = [0u8; 4];
    loop {
        match sock.read_exact(&mut code) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                eprintln!("error: the warm interpreter stopped unexpectedly; run again, or unset {ENV_ENABLE}");
                return Some(ExitCode::from(1));
            }
        }
    }
    Some(ExitCode::from(i32::from_le_bytes(code).clamp(0, 255) as u8))
}

fn spawn_server(path: &Path) {
    use std::os::unix::process::CommandExt;
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("__warm-server")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid in the child before exec detaches it from our terminal and process group.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let _ = cmd.spawn();
}

/// `union __warm-server SOCKET`: import flytekit once, then fork a child per command.
pub fn serve(path: &Path) -> ExitCode {
    let _ = std::fs::remove_file(path);
    let Ok(listener) = UnixListener::bind(path) else {
        return ExitCode::SUCCESS;
    };
    let Ok(env) = crate::python::env::locate() else {
        return ExitCode::SUCCESS;
    };
    let Ok(session) = crate::python::PythonSession::start(env) else {
        let _ = std::fs::remove_file(path);
        return ExitCode::SUCCESS;
    };
    if session.warm_up().is_err() {
        let _ = std::fs::remove_file(path);
        return ExitCode::SUCCESS;
    }
    loop {
        let mut pfd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on our own listening socket.
        let ready = unsafe { libc::poll(&mut pfd, 1, idle_secs().saturating_mul(1000)) };
        if ready == 0 {
            break; // idle
        }
        if ready < 0 {
            continue;
        }
        let Ok((conn, _)) = listener.accept() else {
            continue;
        };
        serve_one(&listener, conn);
    }
    let _ = std::fs::remove_file(path);
    ExitCode::SUCCESS
}

fn serve_one(listener: &UnixListener, mut conn: UnixStream) {
    let mut len = [0u8; 4];
    let Ok((n, fds)) = recv_fds(&conn, &mut len, 3) else {
        return;
    };
    let close_all = |fds: &[RawFd]| {
        for fd in fds {
            // SAFETY: closing descriptors we received and own.
            unsafe { libc::close(*fd) };
        }
    };
    if n != 4 || fds.len() != 3 {
        close_all(&fds);
        return;
    }
    let mut payload = vec![0u8; u32::from_le_bytes(len) as usize];
    if conn.read_exact(&mut payload).is_err() {
        close_all(&fds);
        return;
    }
    let Ok(args) = serde_json::from_slice::<Vec<String>>(&payload) else {
        close_all(&fds);
        return;
    };
    let pid = crate::python::fork_interpreter();
    if pid == 0 {
        // The child: become the client's command.
        // SAFETY: standard descriptor plumbing in a freshly forked single-threaded child.
        unsafe {
            libc::close(listener.as_raw_fd());
            libc::close(conn.as_raw_fd());
            for (i, fd) in fds.iter().enumerate() {
                libc::dup2(*fd, i as RawFd);
                libc::close(*fd);
            }
        }
        crate::process::reset_after_fork();
        if std::env::var_os(ENV_DEBUG).is_some() {
            eprintln!(
                "union: served by the warm interpreter (pid {})",
                std::process::id()
            );
        }
        use clap::Parser;
        let code = match crate::cli::Cli::try_parse_from(&args) {
            Ok(cli) => match crate::commands::dispatch(cli) {
                Ok(code) => code,
                Err(err) => crate::diagnostics::report(&err),
            },
            Err(e) => {
                let _ = e.print();
                ExitCode::from(if e.use_stderr() { 2 } else { 0 })
            }
        };
        crate::process::flush_and_exit(code);
    }
    close_all(&fds);
    if pid < 0 {
        return;
    }
    let _ = conn.write_all(&pid.to_le_bytes());
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    };
    let _ = conn.write_all(&code.to_le_bytes());
}
