//! Build script.
//!
//! 1. Links the binary against the libpython of the interpreter pyo3 resolved (`PYO3_PYTHON`, else
//!    the first `python3` on PATH) and records an rpath to it, so that the binary finds *that*
//!    libpython at run time without LD_LIBRARY_PATH (Debian's system libpython would otherwise win).
//! 2. Records which Python installation the binary was built against, so that at run time we can
//!    refuse a virtualenv made from a different installation or minor version with a clear message.

use std::process::Command;

fn main() {
    pyo3_build_config::use_pyo3_cfgs();
    pyo3_build_config::add_libpython_rpath_link_args();

    let config = pyo3_build_config::get();
    let executable = config
        .executable()
        .map(str::to_string)
        .expect("pyo3 did not resolve a Python executable; set PYO3_PYTHON to the python3.11 to build against");

    // Ask the interpreter itself where its installation lives: for a venv python this is the base.
    let out = Command::new(&executable)
        .args([
            "-c",
            "import sys, sysconfig; print(sys.base_prefix); print('%d.%d.%d' % sys.version_info[:3]); print(sysconfig.get_config_var('LIBDIR') or '')",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run the build interpreter {executable}: {e}"));
    if !out.status.success() {
        panic!(
            "the build interpreter {executable} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let base_prefix = lines.next().unwrap_or_default().trim().to_string();
    let version = lines.next().unwrap_or_default().trim().to_string();
    let libdir = lines.next().unwrap_or_default().trim().to_string();

    println!("cargo:rustc-env=UNION_BUILD_PYTHON_PREFIX={base_prefix}");
    println!("cargo:rustc-env=UNION_BUILD_PYTHON_VERSION={version}");
    println!("cargo:rustc-env=UNION_BUILD_PYTHON_LIBDIR={libdir}");
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-changed=build.rs");
}
