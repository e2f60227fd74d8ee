//! The deterministic `fast<ls_digest>.tar.gz` (`fast_registration.py::fast_package`).
//!
//! The tar stream is byte-for-byte what Python's `tarfile` (PAX format, the default) writes for
//! flytekit's entries with `tar_strip_file_attributes` applied, except that flytekit's float
//! mtime (`datetime(1980, 1, 1).timestamp()`) makes Python add a `mtime=315532800.0` PAX record
//! to every entry; we write the integer mtime in the ustar header only, so PAX records appear
//! only where they are required (paths or link targets over 100 bytes or not ASCII, sizes of
//! 8 GiB or more). Extracted files are identical.
//!
//! Entries: one per listed file, in the list's (sorted) order, no directory entries, arcname =
//! path relative to the root, mtime 315532800 (1980-01-01Z), uid/gid 0, empty uname/gname, mode
//! kept (`st_mode & 0o7777`, as tarfile does). Like `tarfile.add(..., dereference=False)`, a
//! symlink is stored as a symlink entry and a second name of a hard-linked file as a hard-link
//! entry; with `deref_symlinks` both are stored as regular files.
//!
//! Compression: gzip with mtime 0 and no file name (what `pigz --no-time` and Python's `gzip`
//! both do for the timestamp), at level 6 by default: pigz's default, several times faster than
//! Python gzip's level 9 for a few percent in size. The compressed bytes differ from flytekit's
//! (pigz or Python gzip, level 9, FNAME header), which only matters for the upload's Content-MD5,
//! computed here from our own bytes. Single-threaded: code archives are small, and a 2-core CI
//! gains little from parallel gzip.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use md5::{Digest, Md5};

use super::files::{digest_path_bytes, hex, FileList};
use super::PackageError;

/// flytekit's `tar_strip_file_attributes` mtime: 1980-01-01T00:00:00Z.
pub const ARCHIVE_MTIME: u64 = 315_532_800;

const BLOCK: usize = 512;
/// Python's tarfile pads the archive to a multiple of RECORDSIZE (20 blocks).
const RECORD: u64 = 20 * BLOCK as u64;

/// How to build the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveOptions {
    /// pyflyte's `--deref-symlinks`: store link targets' contents instead of links.
    pub deref_symlinks: bool,
    /// gzip level 0–9.
    pub compression_level: u32,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        Self {
            deref_symlinks: false,
            compression_level: 6,
        }
    }
}

/// What was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// Where it was written ([`write_archive`]); `None` when built in memory.
    pub path: Option<PathBuf>,
    /// `fast<ls_digest>.tar.gz`.
    pub file_name: String,
    /// Number of entries (files) in the archive.
    pub file_count: usize,
    /// Size of the uncompressed tar stream.
    pub uncompressed_size: u64,
    /// Size of the `.tar.gz`.
    pub compressed_size: u64,
    /// MD5 of the `.tar.gz` bytes (for the upload's `Content-MD5`).
    pub md5: [u8; 16],
    /// flytekit's `ls_digest` of the archived files.
    pub ls_digest: String,
}

impl Archive {
    /// The archive name for a digest: `fast<ls_digest>.tar.gz`.
    pub fn name_for(ls_digest: &str) -> String {
        format!("fast{ls_digest}.tar.gz")
    }
}

/// Builds the archive for `list` in memory; returns its description and bytes.
pub fn build_archive(
    list: &FileList,
    options: &ArchiveOptions,
) -> Result<(Archive, Vec<u8>), PackageError> {
    let mut out = Vec::new();
    let archive = write_to(list, options, &mut out, Path::new("<memory>"))?;
    Ok((archive, out))
}

/// Builds the archive for `list` into `out_dir/fast<ls_digest>.tar.gz` (written to a temporary
/// name first, then renamed, so a partial archive never has the final name).
pub fn write_archive(
    list: &FileList,
    out_dir: &Path,
    options: &ArchiveOptions,
) -> Result<Archive, PackageError> {
    fs::create_dir_all(out_dir).map_err(|source| PackageError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let tmp = out_dir.join(format!(".fast-{}.tar.gz.partial", std::process::id()));
    let result = (|| {
        let file = fs::File::create(&tmp).map_err(|source| PackageError::Io {
            path: tmp.clone(),
            source,
        })?;
        let mut w = io::BufWriter::new(file);
        let mut archive = write_to(list, options, &mut w, &tmp)?;
        let file = w.into_inner().map_err(|e| PackageError::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(|source| PackageError::Io {
            path: tmp.clone(),
            source,
        })?;
        let dest = out_dir.join(&archive.file_name);
        fs::rename(&tmp, &dest).map_err(|source| PackageError::Io {
            path: dest.clone(),
            source,
        })?;
        archive.path = Some(dest);
        Ok(archive)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Counts and hashes what passes through.
struct Tally<W> {
    inner: W,
    bytes: u64,
    md5: Md5,
}

impl<W: Write> Write for Tally<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        self.md5.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn write_to<W: Write>(
    list: &FileList,
    options: &ArchiveOptions,
    sink: W,
    sink_path: &Path,
) -> Result<Archive, PackageError> {
    let io_err = |source: io::Error| PackageError::Io {
        path: sink_path.to_path_buf(),
        source,
    };
    let outer = Tally {
        inner: sink,
        bytes: 0,
        md5: Md5::new(),
    };
    // No FNAME and mtime 0, so the bytes depend on the contents only.
    let gz: GzEncoder<Tally<W>> = GzBuilder::new()
        .mtime(0)
        .write(outer, Compression::new(options.compression_level.min(9)));
    let mut tar = Tally {
        inner: gz,
        bytes: 0,
        md5: Md5::new(),
    };

    let root = &list.root;
    let mut digest = Md5::new();
    let mut hardlinks: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    let mut sorted: Vec<&PathBuf> = list.files.iter().collect();
    sorted.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    for abs in &sorted {
        let abs: &Path = abs.as_path();
        let rel = abs
            .strip_prefix(root)
            .map_err(|_| PackageError::OutsideRoot {
                path: abs.to_path_buf(),
                root: root.clone(),
            })?;
        let arcname = rel.as_os_str().as_bytes().to_vec();
        let meta_res = if options.deref_symlinks {
            fs::metadata(abs)
        } else {
            fs::symlink_metadata(abs)
        };
        let meta = meta_res.map_err(|source| PackageError::Io {
            path: abs.to_path_buf(),
            source,
        })?;
        let mode = meta.mode() & 0o7777;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(abs).map_err(|source| PackageError::Io {
                path: abs.to_path_buf(),
                source,
            })?;
            write_header(
                &mut tar,
                &arcname,
                b'2',
                mode,
                0,
                target.as_os_str().as_bytes(),
            )
            .map_err(io_err)?;
            hash_file(abs, &mut digest, &mut buf)?;
        } else if !options.deref_symlinks
            && meta.nlink() > 1
            && hardlinks.contains_key(&(meta.dev(), meta.ino()))
        {
            let first = hardlinks[&(meta.dev(), meta.ino())].clone();
            write_header(&mut tar, &arcname, b'1', mode, 0, &first).map_err(io_err)?;
            hash_file(abs, &mut digest, &mut buf)?;
        } else {
            if !options.deref_symlinks && meta.nlink() > 1 {
                hardlinks.insert((meta.dev(), meta.ino()), arcname.clone());
            }
            let size = meta.len();
            write_header(&mut tar, &arcname, b'0', mode, size, b"").map_err(io_err)?;
            copy_exact(abs, size, &mut tar, &mut digest, &mut buf, sink_path)?;
        }
        digest.update(digest_path_bytes(root, abs));
    }
    // End of archive: two zero blocks, then pad to a whole record, as tarfile does.
    tar.write_all(&[0u8; 2 * BLOCK]).map_err(io_err)?;
    let pad = (RECORD - tar.bytes % RECORD) % RECORD;
    tar.write_all(&vec![0u8; pad as usize]).map_err(io_err)?;
    let uncompressed_size = tar.bytes;
    let outer = tar.inner.finish().map_err(io_err)?;
    let ls_digest = hex(&digest.finalize());
    let mut md5 = [0u8; 16];
    md5.copy_from_slice(&outer.md5.finalize());
    Ok(Archive {
        path: None,
        file_name: Archive::name_for(&ls_digest),
        file_count: sorted.len(),
        uncompressed_size,
        compressed_size: outer.bytes,
        md5,
        ls_digest,
    })
}

fn hash_file(path: &Path, digest: &mut Md5, buf: &mut [u8]) -> Result<(), PackageError> {
    let err = |source| PackageError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::File::open(path).map_err(err)?;
    loop {
        let n = f.read(buf).map_err(err)?;
        if n == 0 {
            return Ok(());
        }
        digest.update(&buf[..n]);
    }
}

/// Streams exactly `size` bytes of `path` into the tar and the digest, then pads the block.
fn copy_exact<W: Write>(
    path: &Path,
    size: u64,
    tar: &mut W,
    digest: &mut Md5,
    buf: &mut [u8],
    sink_path: &Path,
) -> Result<(), PackageError> {
    let err = |source| PackageError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::File::open(path).map_err(err)?;
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = f.read(&mut buf[..want]).map_err(err)?;
        if n == 0 {
            return Err(PackageError::FileChanged {
                path: path.to_path_buf(),
            });
        }
        digest.update(&buf[..n]);
        tar.write_all(&buf[..n])
            .map_err(|source| PackageError::Io {
                path: sink_path.to_path_buf(),
                source,
            })?;
        left -= n as u64;
    }
    // A file that grew would make the archive disagree with its own digest-derived name.
    if f.read(&mut buf[..1]).map_err(err)? != 0 {
        return Err(PackageError::FileChanged {
            path: path.to_path_buf(),
        });
    }
    let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
    tar.write_all(&[0u8; BLOCK][..pad as usize])
        .map_err(|source| PackageError::Io {
            path: sink_path.to_path_buf(),
            source,
        })?;
    Ok(())
}

/// Python's `stn`: the value truncated or NUL-padded to `len` bytes.
fn stn(out: &mut Vec<u8>, value: &[u8], len: usize) {
    let n = value.len().min(len);
    out.extend_from_slice(&value[..n]);
    out.resize(out.len() + (len - n), 0);
}

/// Python's `itn` for the ustar range: zero-padded octal, `digits - 1` digits and a NUL.
fn itn(out: &mut Vec<u8>, value: u64, digits: usize) {
    out.extend_from_slice(format!("{:0w$o}", value, w = digits - 1).as_bytes());
    out.push(0);
}

/// What tarfile puts in an ustar string field under a PAX header: ASCII, other chars as `?`.
fn ascii_replace(value: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(value) {
        Ok(s) => s
            .chars()
            .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
            .collect(),
        Err(_) => value
            .iter()
            .map(|&b| if b.is_ascii() { b } else { b'?' })
            .collect(),
    }
}

fn ustar_block(
    name: &[u8],
    typeflag: u8,
    mode: u32,
    size: u64,
    mtime: u64,
    linkname: &[u8],
) -> Vec<u8> {
    let mut h = Vec::with_capacity(BLOCK);
    stn(&mut h, name, 100);
    itn(&mut h, mode as u64, 8);
    itn(&mut h, 0, 8); // uid
    itn(&mut h, 0, 8); // gid
    itn(&mut h, size, 12);
    itn(&mut h, mtime, 12);
    h.extend_from_slice(b"        ");
    h.push(typeflag);
    stn(&mut h, linkname, 100);
    h.extend_from_slice(b"ustar\x0000");
    stn(&mut h, b"", 32); // uname
    stn(&mut h, b"", 32); // gname
    stn(&mut h, b"", 8); // devmajor: NUL-filled for non-device entries, as tarfile does
    stn(&mut h, b"", 8); // devminor
    stn(&mut h, b"", 155); // prefix: tarfile's PAX format never splits names
    h.resize(BLOCK, 0);
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A PAX record: `"<len> <key>=<value>\n"` where `<len>` counts itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let l = key.len() + value.len() + 3;
    let mut p = 0usize;
    loop {
        let n = l + p.to_string().len();
        if n == p {
            break;
        }
        p = n;
    }
    let mut r = format!("{p} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn write_header<W: Write>(
    w: &mut W,
    name: &[u8],
    typeflag: u8,
    mode: u32,
    size: u64,
    linkname: &[u8],
) -> io::Result<()> {
    let needs = |v: &[u8], max: usize| v.len() > max || !v.is_ascii();
    let mut records = Vec::new();
    let binary = std::str::from_utf8(name).is_err() || std::str::from_utf8(linkname).is_err();
    if binary {
        records.extend_from_slice(b"21 hdrcharset=BINARY\n");
    }
    if needs(name, 100) {
        records.extend(pax_record("path", name));
    }
    if needs(linkname, 100) {
        records.extend(pax_record("linkpath", linkname));
    }
    let mut ustar_size = size;
    if size >= 8u64.pow(11) {
        records.extend(pax_record("size", size.to_string().as_bytes()));
        ustar_size = 0;
    }
    let has_pax = records.len() > if binary { 21 } else { 0 };
    if has_pax {
        w.write_all(&ustar_block(
            b"././@PaxHeader",
            b'x',
            0,
            records.len() as u64,
            0,
            b"",
        ))?;
        let pad = (BLOCK - records.len() % BLOCK) % BLOCK;
        records.resize(records.len() + pad, 0);
        w.write_all(&records)?;
        w.write_all(&ustar_block(
            &ascii_replace(name),
            typeflag,
            mode,
            ustar_size,
            ARCHIVE_MTIME,
            &ascii_replace(linkname),
        ))
    } else {
        w.write_all(&ustar_block(
            name,
            typeflag,
            mode,
            ustar_size,
            ARCHIVE_MTIME,
            linkname,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{list_files, ls_digest, CopyMode, IgnoreSet};

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("pkg")).unwrap();
        fs::write(dir.path().join("a.py"), "print('a')\n").unwrap();
        fs::write(dir.path().join("pkg/b.py"), vec![b'x'; 1000]).unwrap();
        dir
    }

    #[test]
    fn deterministic_and_named_by_digest() {
        let dir = tree();
        let list = list_files(dir.path(), CopyMode::All, &IgnoreSet::none()).unwrap();
        let (a1, b1) = build_archive(&list, &ArchiveOptions::default()).unwrap();
        let f = fs::File::options()
            .write(true)
            .open(dir.path().join("a.py"))
            .unwrap();
        f.set_modified(
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000),
        )
        .unwrap();
        let (a2, b2) = build_archive(&list, &ArchiveOptions::default()).unwrap();
        assert_eq!(b1, b2);
        assert_eq!(a1, a2);
        assert_eq!(a1.ls_digest, ls_digest(&list.root, &list.files).unwrap());
        assert_eq!(a1.file_name, format!("fast{}.tar.gz", a1.ls_digest));
        assert_eq!(a1.file_count, 2);
        assert_eq!(a1.compressed_size, b1.len() as u64);
        assert_eq!(a1.uncompressed_size % RECORD, 0);
        assert_eq!(&a1.md5[..], &Md5::digest(&b1)[..]);
        // gzip header: magic, deflate, no flags, mtime 0.
        assert_eq!(&b1[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn header_fields() {
        let h = ustar_block(b"a.py", b'0', 0o644, 11, ARCHIVE_MTIME, b"");
        assert_eq!(&h[100..108], b"0000644\0");
        assert_eq!(&h[124..136], b"00000000013\0");
        assert_eq!(&h[136..148], b"02263523000\0");
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert_eq!(pax_record("path", b"x"), b"9 path=x\n");
        let long = vec![b'a'; 98];
        assert_eq!(pax_record("path", &long).len(), 108);
        assert!(pax_record("path", &long).starts_with(b"108 path="));
    }

    #[test]
    fn writes_to_directory_and_reports_outside_files() {
        let dir = tree();
        let out = tempfile::tempdir().unwrap();
        let list = list_files(dir.path(), CopyMode::All, &IgnoreSet::none()).unwrap();
        let a = write_archive(&list, out.path(), &ArchiveOptions::default()).unwrap();
        let path = a.path.clone().unwrap();
        assert_eq!(path, out.path().join(&a.file_name));
        let (_, mem) = build_archive(&list, &ArchiveOptions::default()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), mem);
        assert_eq!(fs::read_dir(out.path()).unwrap().count(), 1);

        let mut bad = list.clone();
        bad.files.push(PathBuf::from("/etc/hostname"));
        let err = build_archive(&bad, &ArchiveOptions::default()).unwrap_err();
        assert!(matches!(err, PackageError::OutsideRoot { .. }), "{err}");
    }
}
