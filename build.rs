//! Build script.
//!
//! 1. Links the binary against the libpython of the interpreter pyo3 resolved (`PYO3_PYTHON`, else
//!    the first `python3` on PATH) and records an rpath to it, so that the binary finds *that*
//!    libpython at run time without LD_LIBRARY_PATH (Debian's system libpython would otherwise win).
//! 2. Records which Python installation the binary was built against, so that at run time we can
//!    refuse a virtualenv made from a different installation or minor version with a clear message.
//! 3. Generates the Flyte wire types (prost messages, tonic clients and servers) from the schema
//!    carried by the installed PyPI package `flyteidl`, plus our own `proto/*.proto` files; see
//!    [`wire_types`].

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

    wire_types::generate(&executable);
}

/// Flyte wire types, generated at build time from the schema the installed `flyteidl` carries.
///
/// Flytekit 1.16 talks to Flyte with the messages of the PyPI package `flyteidl` (1.16.8). Every
/// `flyteidl.*_pb2` module embeds its file descriptor, so instead of copying `.proto` files (or using
/// the stale crates.io `flyteidl` crate) we ask a Python that has flyteidl installed to export them
/// (`proto/export_flyteidl.py`) as a `FileDescriptorSet`, and compile that with tonic-prost-build.
///
/// Outputs, all in `OUT_DIR`:
/// - `flyteidl.fds`: the exported descriptor set (also used by tests and at run time via
///   `union_cli::idl::FLYTEIDL_DESCRIPTOR_SET`);
/// - `flyteidl/`: one Rust file per protobuf package and `_includes.rs`, the module tree;
/// - `local/`: the same for our own `proto/*.proto` files (compiled with protox; they may import
///   any flyteidl or Google file), `_includes.rs` being empty while there are none.
mod wire_types {
    use std::env;
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use protox::file::{
        ChainFileResolver, DescriptorSetFileResolver, GoogleFileResolver, IncludeFileResolver,
    };
    use protox::prost::Message;
    use tonic_prost_build::FileDescriptorSet;

    /// The flyteidl release flytekit 1.16 pins; another version builds, with a warning.
    const EXPECTED_FLYTEIDL: &str = "1.16.8";

    /// Files of the descriptor set handed to prost-build. Left out: option-only imports
    /// (`google/api`, `protoc-gen-openapiv2`) and flyteidl services the CLI does not speak
    /// (datacatalog, cacheservice), which keeps the build shorter. Google's well-known types must
    /// stay (prost-build looks their fields up) but generate nothing: they map to `prost-types`.
    const GENERATE_PREFIXES: &[&str] = &[
        "google/protobuf/",
        "flyteidl/core/",
        "flyteidl/admin/",
        "flyteidl/event/",
        "flyteidl/service/",
        "flyteidl/plugins/",
    ];

    pub fn generate(pyo3_python: &str) {
        let manifest_dir =
            PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
        let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
        let script = manifest_dir.join("proto").join("export_flyteidl.py");
        println!("cargo:rerun-if-env-changed=UNION_FLYTEIDL_PYTHON");
        // A directory: cargo rescans it, so this covers the export script and any new `.proto`.
        println!(
            "cargo:rerun-if-changed={}",
            manifest_dir.join("proto").display()
        );

        let fds_path = out_dir.join("flyteidl.fds");
        let (python, version) = export_flyteidl(&manifest_dir, pyo3_python, &script, &fds_path);
        if version != EXPECTED_FLYTEIDL {
            println!(
                "cargo:warning=generating wire types from flyteidl {version} ({python}); flytekit 1.16 speaks flyteidl {EXPECTED_FLYTEIDL}"
            );
        }
        println!("cargo:rustc-env=UNION_FLYTEIDL_VERSION={version}");

        let bytes = fs::read(&fds_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", fds_path.display()));
        let all = FileDescriptorSet::decode(bytes.as_slice())
            .unwrap_or_else(|e| panic!("{} is not a FileDescriptorSet: {e}", fds_path.display()));

        compile_flyteidl(&all, &out_dir.join("flyteidl"));
        compile_local(&manifest_dir.join("proto"), &bytes, &out_dir.join("local"));
    }

    /// Runs the export script with the first suitable Python; returns (python, flyteidl version).
    fn export_flyteidl(
        manifest_dir: &Path,
        pyo3_python: &str,
        script: &Path,
        fds: &Path,
    ) -> (String, String) {
        let mut candidates: Vec<(String, &str)> = Vec::new();
        let explicit = env::var("UNION_FLYTEIDL_PYTHON")
            .ok()
            .filter(|s| !s.is_empty());
        if let Some(p) = &explicit {
            candidates.push((p.clone(), "UNION_FLYTEIDL_PYTHON"));
        } else {
            let venv = manifest_dir.join(".venv").join("bin").join("python");
            if venv.exists() {
                candidates.push((venv.display().to_string(), "the project's .venv"));
            }
            candidates.push((
                pyo3_python.to_string(),
                "pyo3's build interpreter, PYO3_PYTHON",
            ));
        }

        let mut failures = Vec::new();
        for (python, origin) in &candidates {
            let out = match Command::new(python).arg(script).arg(fds).output() {
                Ok(out) => out,
                Err(e) => {
                    failures.push(format!("  {python} ({origin}): cannot run it: {e}"));
                    continue;
                }
            };
            if !out.status.success() {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let last = stderr.trim().lines().last().unwrap_or("").to_string();
                failures.push(format!("  {python} ({origin}): {last}"));
                continue;
            }
            let mut version = String::from("unknown");
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some(v) = line.strip_prefix("version ") {
                    version = v.trim().to_string();
                } else if let Some(p) = line.strip_prefix("watch ") {
                    println!("cargo:rerun-if-changed={}", p.trim());
                }
            }
            if origin == &"the project's .venv" {
                // Recreating the venv (possibly with another flyteidl) must rerun the export.
                println!("cargo:rerun-if-changed={python}");
            }
            return (python.clone(), version);
        }

        let setup = manifest_dir
            .join("tests")
            .join("setup")
            .join("python-env.sh");
        let setup_hint = if setup.exists() {
            "run `bash tests/setup/python-env.sh` (it makes .venv with the pinned flyteidl), or "
        } else {
            ""
        };
        // Not a panic: no backtrace to wade through, just the message.
        eprintln!(
            "\nerror: cannot generate the Flyte wire types: no Python with the `flyteidl` package was found.\n\
             tried:\n{}\n\
             hint: {setup_hint}`pip install flyteidl=={EXPECTED_FLYTEIDL}` into {}/.venv\n\
             \x20     (`python -m venv .venv` with the same python as PYO3_PYTHON),\n\
             \x20     or set UNION_FLYTEIDL_PYTHON to a python that has flyteidl {EXPECTED_FLYTEIDL}.\n",
            failures.join("\n"),
            manifest_dir.display(),
        );
        std::process::exit(1);
    }

    fn compile_flyteidl(all: &FileDescriptorSet, out: &Path) {
        let wanted = FileDescriptorSet {
            file: all
                .file
                .iter()
                .filter(|f| GENERATE_PREFIXES.iter().any(|p| f.name().starts_with(p)))
                .cloned()
                .collect(),
        };
        fs::create_dir_all(out).expect("create OUT_DIR/flyteidl");
        tonic_prost_build::configure()
            // Maps as BTreeMap: encoding is deterministic, entries sorted by key like flytekit's
            // `SerializeToString(deterministic=True)`.
            .btree_map(".")
            .build_client(true)
            .build_server(true)
            .build_transport(true)
            .out_dir(out)
            .include_file("_includes.rs")
            .compile_fds(wanted)
            .unwrap_or_else(|e| {
                panic!("generating Rust from the flyteidl descriptors failed: {e}")
            });
    }

    /// Compiles every `proto/*.proto` (our own services), resolving imports from `proto/`, then
    /// from the flyteidl descriptor set, then protox's bundled Google files.
    fn compile_local(proto_dir: &Path, flyteidl_fds: &[u8], out: &Path) {
        fs::create_dir_all(out).expect("create OUT_DIR/local");
        let mut protos: Vec<String> = fs::read_dir(proto_dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".proto"))
                    .collect()
            })
            .unwrap_or_default();
        protos.sort();
        if protos.is_empty() {
            fs::write(out.join("_includes.rs"), "// No proto/*.proto files yet.\n")
                .expect("write _includes.rs");
            return;
        }

        let mut resolver = ChainFileResolver::new();
        resolver.add(IncludeFileResolver::new(proto_dir.to_path_buf()));
        resolver.add(
            DescriptorSetFileResolver::decode(flyteidl_fds)
                .unwrap_or_else(|e| panic!("cannot reuse the flyteidl descriptor set: {e}")),
        );
        resolver.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        // Imports included: prost-build needs every message it refers to, even extern ones.
        compiler.include_source_info(true).include_imports(true);
        compiler
            .open_files(&protos)
            .unwrap_or_else(|e| panic!("compiling proto/*.proto failed: {e}"));
        let fds = compiler.file_descriptor_set();

        // Our own module tree: every package generated here except the extern ones (flyteidl is
        // `crate::idl::flyteidl`, google.protobuf is prost-types), whose files come out empty.
        // Packages are expected in the usual lower_snake.dotted style (prost file name = package).
        let mut packages: Vec<String> = Vec::new();
        for f in &fds.file {
            let package = f.package().to_string();
            if package.is_empty() {
                panic!(
                    "proto/{}: give the file a `package` (it becomes a module of union_cli::idl)",
                    f.name()
                );
            }
            if package == "flyteidl"
                || package.starts_with("flyteidl.")
                || package == "google.protobuf"
            {
                continue;
            }
            if !packages.contains(&package) {
                packages.push(package);
            }
        }
        packages.sort();
        let mut tree = String::from("// Generated by build.rs (wire_types::compile_local).\n");
        let mut open: Vec<&str> = Vec::new();
        for package in &packages {
            let parts: Vec<&str> = package.split('.').collect();
            let common = open.iter().zip(&parts).take_while(|(a, b)| a == b).count();
            while open.len() > common {
                open.pop();
                tree.push_str(&format!("{}}}\n", "    ".repeat(open.len())));
            }
            for part in &parts[common..] {
                tree.push_str(&format!("{}pub mod {part} {{\n", "    ".repeat(open.len())));
                open.push(part);
            }
            tree.push_str(&format!(
                "{}include!(\"{package}.rs\");\n",
                "    ".repeat(open.len())
            ));
        }
        while open.pop().is_some() {
            tree.push_str(&format!("{}}}\n", "    ".repeat(open.len())));
        }

        tonic_prost_build::configure()
            .build_client(true)
            .build_server(true)
            .build_transport(true)
            .extern_path(".flyteidl", "crate::idl::flyteidl")
            .btree_map(".")
            .out_dir(out)
            .compile_fds(fds)
            .unwrap_or_else(|e| panic!("generating Rust from proto/*.proto failed: {e}"));
        fs::write(out.join("_includes.rs"), tree).expect("write _includes.rs");
    }
}
