//! The fast-register code archive, built natively with pyflyte's semantics
//! (`flytekit/tools/fast_registration.py::fast_package`, `tools/script_mode.py`, `tools/ignore.py`).
//!
//! - [`files`]: which files (`--copy all|auto|none`) and their `ls_digest`;
//! - [`ignore`]: `.gitignore` / `.dockerignore` / `.flyteignore` / built-in ignore rules;
//! - [`archive`]: the deterministic `fast<ls_digest>.tar.gz`.
//!
//! The file list and `ls_digest` equal flytekit's inside a git work tree (checked against
//! flytekit 1.16.31 by `tests/packaging/archive.rs`). Deliberate differences, all rare:
//! - outside a git work tree we still apply `.gitignore` files (flytekit applies none);
//! - a git-ignored file with a non-ASCII name is ignored (flytekit misses it: `git ls-files`
//!   quotes such names, so they never match);
//! - FIFOs and device nodes are skipped (flytekit would read them, and hang on a FIFO);
//! - in `auto` mode a file loaded under two module names is listed once (flytekit hashes and
//!   archives it twice);
//! - with `--deref-symlinks`, files under a symlinked directory get the path-based git rules
//!   (git itself never looks through the link);
//! - the tar has no per-entry `mtime=315532800.0` PAX record and the gzip bytes differ
//!   (level 6, no FNAME); see [`archive`].
//!
//! Virtualenvs inside the project (directories holding `pyvenv.cfg`) are kept, as flytekit does,
//! unless [`ListOptions::skip_virtualenvs`] is set; they are always listed in
//! [`FileList::virtualenvs`] so the CLI can warn about uploading one.

//!
//! Owns: what goes into the code archive and the archive itself. Depends on `union-diagnostics`
//! only. Never prints.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod archive;
pub mod files;
mod git;
pub mod ignore;

use std::path::PathBuf;

pub use archive::{build_archive, write_archive, Archive, ArchiveOptions};
pub use files::{
    list_files, list_files_with, ls_digest, CopyMode, FileList, IgnoredFile, ListOptions,
    SkipReason, SkippedPath,
};
pub use ignore::{IgnoreKind, IgnoreRule, IgnoreSet, IgnoreSource, STANDARD_IGNORE_PATTERNS};

/// Errors while listing or archiving project files.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// A file or directory could not be read or written.
    #[error("cannot access {path}: {source}", path = .path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The project root is not a directory.
    #[error("{path} is not a directory", path = .path.display())]
    NotADirectory {
        /// The offending root.
        path: PathBuf,
    },
    /// A file changed size while it was being archived.
    #[error("{path} changed while it was being archived; try again", path = .path.display())]
    FileChanged {
        /// The file.
        path: PathBuf,
    },
    /// A file to archive is not under the root.
    #[error("{path} is not under the project root {root}", path = .path.display(), root = .root.display())]
    OutsideRoot {
        /// The file.
        path: PathBuf,
        /// The root.
        root: PathBuf,
    },
}
