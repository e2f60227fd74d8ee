//! Finding the user's Python environment and checking it matches the libpython we link.
//!
//! Order: `$VIRTUAL_ENV`, else a `.venv` found upward from the working directory, else the
//! installation the binary was built against. A virtualenv must have been made from that same
//! installation (its `pyvenv.cfg` `home`) and minor version, or compiled modules break in subtle
//! ways; we check before starting the interpreter and say what to do.

use std::path::{Path, PathBuf};

use super::PythonError;

/// The installation `union` was built against (set by build.rs).
pub const BUILD_PREFIX: &str = env!("UNION_BUILD_PYTHON_PREFIX");
/// Its full version, e.g. `3.11.7`.
pub const BUILD_VERSION: &str = env!("UNION_BUILD_PYTHON_VERSION");

/// How the environment was found (shown in error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource {
    VirtualEnvVar,
    DotVenv,
    BuildInterpreter,
}

impl EnvSource {
    pub fn describe(&self) -> &'static str {
        match self {
            EnvSource::VirtualEnvVar => "$VIRTUAL_ENV",
            EnvSource::DotVenv => "a .venv above the working directory",
            EnvSource::BuildInterpreter => "the Python union was built with",
        }
    }
}

/// A Python environment to start in.
#[derive(Debug, Clone)]
pub struct PythonEnv {
    /// The venv directory, or the installation prefix.
    pub prefix: PathBuf,
    /// The interpreter path used as `program_name` (becomes `sys.executable`).
    pub python: PathBuf,
    pub source: EnvSource,
}

fn major_minor(v: &str) -> String {
    v.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// Parse `pyvenv.cfg` into (home, version).
fn read_pyvenv_cfg(path: &Path) -> std::io::Result<(Option<String>, Option<String>)> {
    let text = std::fs::read_to_string(path)?;
    let mut home = None;
    let mut version = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim().to_string());
        match k {
            "home" => home = Some(v),
            // venv writes `version`, uv and virtualenv write `version_info`.
            "version" | "version_info" if version.is_none() || k == "version" => version = Some(v),
            _ => {}
        }
    }
    Ok((home, version))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Check that the venv at `dir` was made from our installation; return its interpreter path.
fn check_venv(dir: &Path, source: &EnvSource) -> Result<PythonEnv, PythonError> {
    let cfg = dir.join("pyvenv.cfg");
    let (home, version) = read_pyvenv_cfg(&cfg).map_err(|e| PythonError::NotAVenv {
        dir: dir.to_path_buf(),
        found: source.describe(),
        source: e,
    })?;
    let build_bin = Path::new(BUILD_PREFIX).join("bin");
    if let Some(home) = &home {
        if !same_dir(Path::new(home), &build_bin) {
            // A venv made from another installation of the same version may still be ABI-incompatible
            // (e.g. Debian's 3.11.2 lacks symbols pyenv's 3.11.7 modules need), so refuse it too.
            return Err(PythonError::OtherInstallation {
                dir: dir.to_path_buf(),
                found: source.describe(),
                home: home.clone(),
                version: version.clone().unwrap_or_else(|| "unknown version".into()),
            });
        }
    }
    if let Some(v) = &version {
        if major_minor(v) != major_minor(BUILD_VERSION) {
            return Err(PythonError::OtherVersion {
                dir: dir.to_path_buf(),
                found: source.describe(),
                version: v.clone(),
            });
        }
    }
    let python = ["bin/python", "bin/python3"]
        .iter()
        .map(|p| dir.join(p))
        .find(|p| p.exists())
        .ok_or_else(|| PythonError::NoInterpreter {
            dir: dir.to_path_buf(),
        })?;
    Ok(PythonEnv {
        prefix: dir.to_path_buf(),
        python,
        source: source.clone(),
    })
}

/// Find the environment to run in, from the process environment and working directory.
pub fn locate() -> Result<PythonEnv, PythonError> {
    locate_from(
        std::env::var_os(crate::env_vars::VIRTUAL_ENV).map(PathBuf::from),
        &std::env::current_dir().unwrap_or_default(),
    )
}

/// [`locate`] with explicit inputs (for tests).
pub fn locate_from(virtual_env: Option<PathBuf>, cwd: &Path) -> Result<PythonEnv, PythonError> {
    if let Some(v) = virtual_env.filter(|v| !v.as_os_str().is_empty()) {
        return check_venv(&v, &EnvSource::VirtualEnvVar);
    }
    let mut dir = Some(cwd);
    while let Some(d) = dir {
        let candidate = d.join(".venv");
        if candidate.join("pyvenv.cfg").is_file() {
            return check_venv(&candidate, &EnvSource::DotVenv);
        }
        dir = d.parent();
    }
    let prefix = PathBuf::from(BUILD_PREFIX);
    let python = ["bin/python3", "bin/python"]
        .iter()
        .map(|p| prefix.join(p))
        .find(|p| p.exists())
        .unwrap_or_else(|| prefix.join("bin/python3"));
    Ok(PythonEnv {
        prefix,
        python,
        source: EnvSource::BuildInterpreter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_venv(dir: &Path, home: &str, version: &str) {
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/python"), "").unwrap();
        std::fs::write(
            dir.join("pyvenv.cfg"),
            format!("home = {home}\ninclude-system-site-packages = false\nversion = {version}\n"),
        )
        .unwrap();
    }

    #[test]
    fn virtual_env_var_wins() {
        let t = tempfile::tempdir().unwrap();
        let v = t.path().join("env");
        fake_venv(&v, &format!("{BUILD_PREFIX}/bin"), BUILD_VERSION);
        let env = locate_from(Some(v.clone()), t.path()).unwrap();
        assert_eq!(env.source, EnvSource::VirtualEnvVar);
        assert_eq!(env.prefix, v);
    }

    #[test]
    fn dot_venv_found_upward() {
        let t = tempfile::tempdir().unwrap();
        fake_venv(
            &t.path().join(".venv"),
            &format!("{BUILD_PREFIX}/bin"),
            BUILD_VERSION,
        );
        let deep = t.path().join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        let env = locate_from(None, &deep).unwrap();
        assert_eq!(env.source, EnvSource::DotVenv);
    }

    #[test]
    fn other_minor_version_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let v = t.path().join("env");
        fake_venv(&v, &format!("{BUILD_PREFIX}/bin"), "3.12.1");
        let e = locate_from(Some(v), t.path()).unwrap_err();
        assert!(e.to_string().contains("3.12.1"), "{e}");
        assert!(union_diagnostics::Hint::hints(&e)[0].contains("-m venv"));
    }

    #[test]
    fn other_installation_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let v = t.path().join("env");
        fake_venv(&v, "/usr/bin", BUILD_VERSION);
        let e = locate_from(Some(v), t.path()).unwrap_err();
        assert!(e.to_string().contains("/usr/bin"), "{e}");
    }
}
