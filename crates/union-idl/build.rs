//! Generates the Flyte wire types (prost messages, tonic clients and servers) and our own
//! services from committed schema files, so the build needs no Python and gives the same code
//! every time:
//!
//! - `proto/flyteidl.fds`: the `FileDescriptorSet` exported from the PyPI package `flyteidl`
//!   (the version in `proto/flyteidl.version`, 1.16.8: what flytekit 1.16 speaks), by
//!   `proto/regenerate.sh`. Every `flyteidl.*_pb2` module embeds its file descriptor, so this is
//!   exactly the schema flytekit uses, where the crates.io `flyteidl` crate is stale;
//! - `proto/union.fds`: union's remote image builder and secret types (`cloudidl.imagebuilder`,
//!   `cloudidl.secret`) and their
//!   imports (`cloudidl.common`, `validate`), exported from the PyPI package `union` (the version
//!   in `proto/union.version`) by the same script, from the descriptors its `_pb2` modules embed;
//! - `proto/*.proto`: our own services, compiled with protox (no system `protoc`); they may import
//!   any flyteidl or Google file.
//!
//! Outputs in `OUT_DIR`: `flyteidl/`, `union/` and `local/`, one Rust file per protobuf package
//! and an `_includes.rs` module tree each.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use protox::file::{
    ChainFileResolver, DescriptorSetFileResolver, GoogleFileResolver, IncludeFileResolver,
};
use protox::prost::Message;
use tonic_prost_build::FileDescriptorSet;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let proto = manifest_dir.join("proto");
    // A directory: cargo rescans it, so this covers a new `.proto` and a regenerated set.
    println!("cargo:rerun-if-changed={}", proto.display());

    let version = fs::read_to_string(proto.join("flyteidl.version"))
        .expect("proto/flyteidl.version (written by proto/regenerate.sh)");
    println!("cargo:rustc-env=UNION_FLYTEIDL_VERSION={}", version.trim());

    let fds_path = proto.join("flyteidl.fds");
    let bytes =
        fs::read(&fds_path).unwrap_or_else(|e| panic!("cannot read {}: {e}", fds_path.display()));
    let all = FileDescriptorSet::decode(bytes.as_slice())
        .unwrap_or_else(|e| panic!("{} is not a FileDescriptorSet: {e}", fds_path.display()));

    compile_flyteidl(&all, &out_dir.join("flyteidl"));
    compile_union(&proto, &out_dir.join("union"));
    compile_local(&proto, &bytes, &out_dir.join("local"));
}

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
        .unwrap_or_else(|e| panic!("generating Rust from the flyteidl descriptors failed: {e}"));
}

/// union's image builder and secret types: every file of `proto/union.fds` but `google/api`
/// (Google's well-known types map to `prost-types`).
fn compile_union(proto: &Path, out: &Path) {
    let version = fs::read_to_string(proto.join("union.version"))
        .expect("proto/union.version (written by proto/regenerate.sh)");
    println!("cargo:rustc-env=UNION_UNION_VERSION={}", version.trim());
    let path = proto.join("union.fds");
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut set = FileDescriptorSet::decode(bytes.as_slice())
        .unwrap_or_else(|e| panic!("{} is not a FileDescriptorSet: {e}", path.display()));
    // The secret service imports `google/api` for HTTP options only; generating it would clash
    // with nothing we use and only lengthen the build.
    set.file.retain(|f| !f.name().starts_with("google/api/"));
    fs::create_dir_all(out).expect("create OUT_DIR/union");
    tonic_prost_build::configure()
        .btree_map(".")
        .build_client(true)
        .build_server(true)
        .build_transport(true)
        .out_dir(out)
        .include_file("_includes.rs")
        .compile_fds(set)
        .unwrap_or_else(|e| panic!("generating Rust from union's descriptors failed: {e}"));
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
                "proto/{}: give the file a `package` (it becomes a module of union_idl)",
                f.name()
            );
        }
        if package == "flyteidl" || package.starts_with("flyteidl.") || package == "google.protobuf"
        {
            continue;
        }
        if !packages.contains(&package) {
            packages.push(package);
        }
    }
    packages.sort();
    let mut tree = String::from("// Generated by crates/union-idl/build.rs (compile_local).\n");
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
        .extern_path(".flyteidl", "crate::flyteidl")
        .btree_map(".")
        .out_dir(out)
        .compile_fds(fds)
        .unwrap_or_else(|e| panic!("generating Rust from proto/*.proto failed: {e}"));
    fs::write(out.join("_includes.rs"), tree).expect("write _includes.rs");
}
