//! `ImageSpec.tag`, `ImageSpec.image_name()` and `ImageSpec.id`, byte-identical to flytekit 1.16.31.
//!
//! Both hash `str(dict)` of the spec's non-None dataclass fields in declaration order (minus
//! `pip_secret_mounts`, `builder`, `runtime_packages`) with MD5, encoded as unpadded base64url.
//! The tag first swaps file references for digests, drops `registry_config` and turns `-` into `_`.

mod format;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use md5::{Digest, Md5};
use sha1::Sha1;

use crate::files;
use crate::pyrepr::{self, DictWriter};
use crate::spec::{BaseImage, CopyFileDetection, HostEnv, ImageSpec};
use crate::{ImageSpecError, Result};

pub use format::format_spec_hash;

/// What a tag computation reads from outside the spec.
#[derive(Debug, Clone)]
pub struct TagContext {
    /// The directory relative paths (`requirements`, `copy`, `source_root`) are resolved against;
    /// flytekit uses the process CWD.
    pub base_dir: PathBuf,
    /// For `source_copy_mode=LOADED_MODULES`: the `__file__` of every module Python has loaded,
    /// leaving out flytekit's package directory, `sys.prefix`, `sys.base_prefix` and
    /// site-packages (as `list_imported_modules_as_files` does).
    pub loaded_modules: Vec<PathBuf>,
    /// `ImageBuildEngine._IMAGE_NAME_TO_REAL_NAME`: image names a builder reported under another
    /// fully-qualified name (union, noop); `image_name()` returns the mapped value.
    pub real_names: HashMap<String, String>,
    /// Host facts for the `__post_init__` that `dataclasses.replace` re-runs during the tag.
    pub host: HostEnv,
}

impl TagContext {
    /// A context resolving relative paths against `base_dir`, on this host.
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        TagContext {
            base_dir: base_dir.into(),
            loaded_modules: Vec::new(),
            real_names: HashMap::new(),
            host: HostEnv::current(),
        }
    }

    /// A context resolving relative paths against the process's current directory, like flytekit.
    pub fn from_cwd() -> std::io::Result<Self> {
        Ok(Self::new(std::env::current_dir()?))
    }
}

/// The file-free MD5 → base64url step shared by `id` and `tag`.
fn hash_text(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

impl ImageSpec {
    /// `str(asdict(spec))` with None fields and `pip_secret_mounts`/`builder`/`runtime_packages`
    /// dropped: the exact text `ImageSpec.id` hashes (nested specs render as nested dicts).
    pub fn id_repr(&self) -> String {
        self.dict_repr(None)
    }

    /// The dict text, with `copy` rendered as the given digest string instead of the list.
    fn dict_repr(&self, copy_digest: Option<&str>) -> String {
        let mut w = DictWriter::new();
        let opt = |w: &mut DictWriter, key: &str, v: &Option<String>| {
            if let Some(s) = v {
                w.entry(key, |o| pyrepr::write_str(o, s));
            }
        };
        let list = |w: &mut DictWriter, key: &str, v: &Option<Vec<String>>| {
            if let Some(items) = v {
                w.entry(key, |o| pyrepr::write_str_list(o, items));
            }
        };
        w.entry("name", |o| pyrepr::write_str(o, &self.name));
        opt(&mut w, "python_version", &self.python_version);
        // builder: excluded.
        opt(&mut w, "source_root", &self.source_root);
        if let Some(env) = &self.env {
            w.entry("env", |o| pyrepr::write_str_dict(o, env));
        }
        opt(&mut w, "registry", &self.registry);
        list(&mut w, "packages", &self.packages);
        list(&mut w, "conda_packages", &self.conda_packages);
        list(&mut w, "conda_channels", &self.conda_channels);
        opt(&mut w, "requirements", &self.requirements);
        list(&mut w, "apt_packages", &self.apt_packages);
        opt(&mut w, "cuda", &self.cuda);
        opt(&mut w, "cudnn", &self.cudnn);
        match &self.base_image {
            None => {}
            Some(BaseImage::Image(s)) => w.entry("base_image", |o| pyrepr::write_str(o, s)),
            Some(BaseImage::Spec(inner)) => w.entry("base_image", |o| o.push_str(&inner.id_repr())),
        }
        opt(&mut w, "platform", &self.platform);
        opt(&mut w, "pip_index", &self.pip_index);
        list(&mut w, "pip_extra_index_url", &self.pip_extra_index_url);
        // pip_secret_mounts: excluded.
        opt(&mut w, "pip_extra_args", &self.pip_extra_args);
        opt(&mut w, "registry_config", &self.registry_config);
        list(&mut w, "entrypoint", &self.entrypoint);
        list(&mut w, "commands", &self.commands);
        opt(&mut w, "tag_format", &self.tag_format);
        if let Some(mode) = self.source_copy_mode {
            w.entry("source_copy_mode", |o| o.push_str(&mode.py_repr()));
        }
        match copy_digest {
            Some(d) => w.entry("copy", |o| pyrepr::write_str(o, d)),
            None => list(&mut w, "copy", &self.copy),
        }
        opt(&mut w, "python_exec", &self.python_exec);
        // runtime_packages: excluded.
        for (key, v) in [
            ("builder_options", &self.builder_options),
            ("builder_config", &self.builder_config),
        ] {
            if let Some(map) = v {
                w.entry(key, |o| {
                    pyrepr::write_json(o, &serde_json::Value::Object(map.clone()))
                });
            }
        }
        w.finish()
    }

    /// `ImageSpec.id`: the hash of the spec as given (paths not read, `registry_config` kept,
    /// `-` kept). Written into images as `_F_IMG_ID`.
    pub fn id(&self) -> String {
        hash_text(&self.id_repr())
    }

    /// The spec `ImageSpec.tag` hashes (base image resolved to its name, `source_root` and
    /// `requirements` replaced by digests, `registry_config` dropped), and the digest that
    /// replaces the `copy` list.
    fn tag_spec(&self, ctx: &TagContext) -> Result<(ImageSpec, Option<String>)> {
        let mut spec = self.clone();
        if let Some(BaseImage::Spec(inner)) = &self.base_image {
            spec.base_image = Some(BaseImage::Image(inner.image_name(ctx)?));
        }
        if let Some(mode) = self
            .source_copy_mode
            .filter(|m| *m != CopyFileDetection::NoCopy)
        {
            let root = self
                .source_root
                .as_deref()
                .filter(|r| !r.is_empty())
                .ok_or_else(|| ImageSpecError::MissingSourceRoot {
                    name: self.name.clone(),
                    mode: mode.name().to_string(),
                })?;
            let digest = match mode {
                CopyFileDetection::LoadedModules => {
                    files::ls_digest_loaded(&ctx.base_dir, root, &ctx.loaded_modules, &self.name)?
                }
                _ => files::ls_digest_all(&ctx.base_dir, root, &self.name)?,
            };
            spec.source_root = Some(digest);
        }
        // `if self.copy:`: an empty list stays a list.
        let copy_digest = match self.copy.as_ref().filter(|c| !c.is_empty()) {
            Some(copy) => Some(files::copy_digest(&ctx.base_dir, copy, &self.name)?),
            None => None,
        };
        if let Some(req) = spec.requirements.clone().filter(|r| !r.is_empty()) {
            spec.requirements = Some(requirements_digest(&ctx.base_dir, &req, &self.name)?);
        }
        spec.registry_config = None;
        // dataclasses.replace re-runs __post_init__ on the copy.
        spec.normalize(&ctx.host)?;
        Ok((spec, copy_digest))
    }

    /// The exact `str(dict)` text `ImageSpec.tag` hashes: base image resolved to its name,
    /// `source_root`, `copy` and `requirements` replaced by file digests, `registry_config` dropped.
    pub fn tag_repr(&self, ctx: &TagContext) -> Result<String> {
        let (spec, copy_digest) = self.tag_spec(ctx)?;
        Ok(spec.dict_repr(copy_digest.as_deref()))
    }

    /// `ImageSpec.tag`: the spec hash with `-` → `_`, passed through `tag_format` if set.
    pub fn tag(&self, ctx: &TagContext) -> Result<String> {
        let tag = hash_text(&self.tag_repr(ctx)?).replace('-', "_");
        match self.tag_format.as_deref().filter(|f| !f.is_empty()) {
            Some(format) => {
                format_spec_hash(format, &tag).map_err(|message| ImageSpecError::TagFormat {
                    image: self.name.clone(),
                    format: format.to_string(),
                    message,
                })
            }
            None => Ok(tag),
        }
    }

    /// `ImageSpec.image_name()`: `[registry/]name:tag`, or the real name a builder reported for it.
    pub fn image_name(&self, ctx: &TagContext) -> Result<String> {
        let mut name = format!("{}:{}", self.name, self.tag(ctx)?);
        if let Some(registry) = self.registry.as_deref().filter(|r| !r.is_empty()) {
            name = format!("{registry}/{name}");
        }
        Ok(ctx.real_names.get(&name).cloned().unwrap_or(name))
    }
}

/// `hashlib.sha1(pathlib.Path(path).read_bytes().strip()).hexdigest()`.
fn requirements_digest(base: &Path, req: &str, image: &str) -> Result<String> {
    let path = files::resolve(base, req);
    let bytes = std::fs::read(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ImageSpecError::RequirementsNotFound {
                image: image.to_string(),
                path: req.to_string(),
                base: base.to_path_buf(),
            }
        } else {
            ImageSpecError::Io {
                image: image.to_string(),
                path: path.clone(),
                source,
            }
        }
    })?;
    // bytes.strip(): ASCII whitespace (space, \t, \n, \r, \x0b, \x0c) at both ends.
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = bytes.iter().position(|b| !ws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !ws(b))
        .map(|i| i + 1)
        .unwrap_or(start);
    let digest = Sha1::digest(&bytes[start..end.max(start)]);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    //! Every test vector of flytekit-facts.md §2, produced by flytekit 1.16.31 on linux/x86_64.
    use super::*;
    use serde_json::json;
    use std::fs;

    fn ctx(dir: &Path) -> TagContext {
        TagContext {
            host: HostEnv::x86_64(),
            ..TagContext::new(dir)
        }
    }

    fn spec(s: ImageSpec) -> ImageSpec {
        s.post_init(&HostEnv::x86_64()).unwrap()
    }

    fn strs(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn vector_a_requirements() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("requirements.txt"),
            "numpy==1.26.4\npandas==2.2.2\n",
        )
        .unwrap();
        let s = spec(ImageSpec {
            name: "my-image".into(),
            requirements: Some("requirements.txt".into()),
            ..Default::default()
        });
        let c = ctx(dir.path());
        assert_eq!(
            s.tag_repr(&c).unwrap(),
            "{'name': 'my-image', 'requirements': '7c383fc57c2b539f60e7c660c819620c66789100', 'platform': 'linux/amd64'}"
        );
        assert_eq!(s.tag(&c).unwrap(), "QD6sAAs50sjcUJbqqrUnsQ");
        assert_eq!(s.image_name(&c).unwrap(), "my-image:QD6sAAs50sjcUJbqqrUnsQ");
        assert_eq!(
            s.id_repr(),
            "{'name': 'my-image', 'requirements': 'requirements.txt', 'platform': 'linux/amd64'}"
        );
        assert_eq!(s.id(), "sNury1nTENTtdlqTioRruA");
    }

    #[test]
    fn missing_requirements_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(ImageSpec {
            name: "img".into(),
            requirements: Some("nope.txt".into()),
            ..Default::default()
        });
        let err = s.tag(&ctx(dir.path())).unwrap_err();
        assert!(matches!(err, ImageSpecError::RequirementsNotFound { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("nope.txt")
                && msg.contains("'img'")
                && msg.contains(&dir.path().display().to_string()),
            "{msg}"
        );
    }

    #[test]
    fn vector_b_packages() {
        let s = spec(ImageSpec {
            name: "my-image".into(),
            packages: strs(&["numpy==1.26.4", "pandas"]),
            ..Default::default()
        });
        let c = ctx(Path::new("/nonexistent"));
        assert_eq!(s.tag_repr(&c).unwrap(), "{'name': 'my-image', 'packages': ['numpy==1.26.4', 'pandas'], 'platform': 'linux/amd64'}");
        assert_eq!(s.image_name(&c).unwrap(), "my-image:jJEFVIUTdwjdY0kL28FDYA");
    }

    #[test]
    fn vector_c_registry_mixed_case() {
        let s = spec(ImageSpec {
            name: "My-Image".into(),
            registry: Some("ghcr.io/Example-Org".into()),
            python_version: Some("3.11".into()),
            packages: strs(&["scikit-learn"]),
            apt_packages: strs(&["git"]),
            ..Default::default()
        });
        let c = ctx(Path::new("/nonexistent"));
        assert_eq!(
            s.tag_repr(&c).unwrap(),
            "{'name': 'my-image', 'python_version': '3.11', 'registry': 'ghcr.io/example-org', 'packages': ['scikit-learn'], 'apt_packages': ['git'], 'platform': 'linux/amd64'}"
        );
        assert_eq!(
            s.image_name(&c).unwrap(),
            "ghcr.io/example-org/my-image:ibQxp6eicYQvmTWiNrr5PQ"
        );
    }

    #[test]
    fn vector_d_tag_format_and_arm64() {
        let base = ImageSpec {
            name: "flytekit".into(),
            registry: Some("localhost:30000".into()),
            packages: strs(&["numpy"]),
            tag_format: Some("{spec_hash}-dev".into()),
            ..Default::default()
        };
        let s = spec(base.clone());
        let c = ctx(Path::new("/nonexistent"));
        assert_eq!(
            s.tag_repr(&c).unwrap(),
            "{'name': 'flytekit', 'registry': 'localhost:30000', 'packages': ['numpy'], 'platform': 'linux/amd64', 'tag_format': '{spec_hash}-dev'}"
        );
        assert_eq!(
            s.image_name(&c).unwrap(),
            "localhost:30000/flytekit:MBGDYSRDkWlg2iUFRyPoTA-dev"
        );
        let arm = base
            .post_init(&HostEnv {
                machine: "arm64".into(),
                force_push_env: None,
            })
            .unwrap();
        assert_eq!(arm.platform.as_deref(), Some("linux/arm64"));
        assert_ne!(arm.image_name(&c).unwrap(), s.image_name(&c).unwrap());
    }

    #[test]
    fn vector_e_defaults() {
        let s = spec(ImageSpec::default());
        let c = ctx(Path::new("/nonexistent"));
        assert_eq!(
            s.tag_repr(&c).unwrap(),
            "{'name': 'flytekit', 'platform': 'linux/amd64'}"
        );
        assert_eq!(s.image_name(&c).unwrap(), "flytekit:fv8aVGdGU6GT1t5W98ZQPA");
    }

    #[test]
    fn vector_f_dash_to_underscore() {
        let s = spec(ImageSpec {
            name: "x".into(),
            env: Some(vec![("A".into(), "1".into()), ("B".into(), "it's".into())]),
            commands: strs(&["echo hi"]),
            base_image: Some(BaseImage::Image("python:3.11-slim".into())),
            pip_index: Some("https://pypi.example.com/simple".into()),
            pip_extra_index_url: strs(&["https://x4/simple"]),
            ..Default::default()
        });
        let c = ctx(Path::new("/nonexistent"));
        assert_eq!(
            s.tag_repr(&c).unwrap(),
            "{'name': 'x', 'env': {'A': '1', 'B': \"it's\"}, 'base_image': 'python:3.11-slim', 'platform': 'linux/amd64', 'pip_index': 'https://pypi.example.com/simple', 'pip_extra_index_url': ['https://x4/simple'], 'commands': ['echo hi']}"
        );
        assert_eq!(s.id(), "j7-8xwAP37IjAOL7FfCYeg");
        assert_eq!(s.tag(&c).unwrap(), "j7_8xwAP37IjAOL7FfCYeg");
    }

    #[test]
    fn vector_l_empty_containers() {
        let s = spec(ImageSpec {
            name: "e".into(),
            packages: Some(vec![]),
            env: Some(vec![]),
            ..Default::default()
        });
        let c = ctx(Path::new("/nonexistent"));
        assert_eq!(
            s.tag_repr(&c).unwrap(),
            "{'name': 'e', 'env': {}, 'packages': [], 'platform': 'linux/amd64'}"
        );
        assert_eq!(s.image_name(&c).unwrap(), "e:0FsPNIMXj2BXh4nRtPS_2w");
    }

    #[test]
    fn vector_m_quoting() {
        let s = spec(ImageSpec {
            name: "q".into(),
            env: Some(vec![("MSG".into(), "it's \"ok\" é\ttab".into())]),
            commands: strs(&["echo 'a'"]),
            ..Default::default()
        });
        let c = ctx(Path::new("/nonexistent"));
        assert_eq!(
            s.tag_repr(&c).unwrap(),
            "{'name': 'q', 'env': {'MSG': 'it\\'s \"ok\" é\\ttab'}, 'platform': 'linux/amd64', 'commands': [\"echo 'a'\"]}"
        );
        assert_eq!(s.image_name(&c).unwrap(), "q:ZPrhX_uygAh4N_LbEuzlrg");
    }

    #[test]
    fn vector_n_crlf_requirements() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("req_crlf.txt"),
            "numpy==1.26.4\r\npandas\r\n\r\n",
        )
        .unwrap();
        let s = spec(ImageSpec {
            name: "r".into(),
            requirements: Some("req_crlf.txt".into()),
            ..Default::default()
        });
        let c = ctx(dir.path());
        assert_eq!(
            s.tag_repr(&c).unwrap(),
            "{'name': 'r', 'requirements': 'f434612a86c7fcfcd796d7a4a0572d7ec91142ae', 'platform': 'linux/amd64'}"
        );
        assert_eq!(s.image_name(&c).unwrap(), "r:OxIvZBEG_bxJGPTyIFBwQg");
    }

    #[test]
    fn vector_o_builder_options() {
        let opts = json!({"imagepull_secret_name": "s", "n": 1, "flag": true});
        let s = spec(ImageSpec {
            name: "b".into(),
            builder_options: opts.as_object().cloned(),
            ..Default::default()
        });
        let c = ctx(Path::new("/nonexistent"));
        assert_eq!(
            s.tag_repr(&c).unwrap(),
            "{'name': 'b', 'platform': 'linux/amd64', 'builder_options': {'imagepull_secret_name': 's', 'n': 1, 'flag': True}}"
        );
        assert_eq!(s.image_name(&c).unwrap(), "b:kQRwLHEw706kcxt_uht5Ng");
        // The same spec through the bridge's JSON keeps the key order.
        let from_json = ImageSpec::from_bridge_json(
            json!({"name": "b", "builder": "envd", "platform": "linux/amd64", "builder_options": opts, "_is_force_push": false})
                .as_object()
                .unwrap(),
            &HostEnv::x86_64(),
        )
        .unwrap();
        assert_eq!(
            from_json.image_name(&c).unwrap(),
            "b:kQRwLHEw706kcxt_uht5Ng"
        );
    }

    #[test]
    fn vector_p_python_exec_platform() {
        let s = spec(ImageSpec {
            name: "p".into(),
            python_exec: Some("/usr/bin/python3".into()),
            platform: Some("linux/arm64".into()),
            base_image: Some(BaseImage::Image("nvcr.io/nvidia/pytorch:24.01-py3".into())),
            ..Default::default()
        });
        let c = ctx(Path::new("/nonexistent"));
        assert_eq!(
            s.tag_repr(&c).unwrap(),
            "{'name': 'p', 'base_image': 'nvcr.io/nvidia/pytorch:24.01-py3', 'platform': 'linux/arm64', 'python_exec': '/usr/bin/python3'}"
        );
        assert_eq!(s.image_name(&c).unwrap(), "p:syUJXKjL0mvPkjcSRarkSw");
    }

    fn src_tree(dir: &Path) {
        fs::create_dir_all(dir.join("src_root/pkg")).unwrap();
        fs::write(dir.join("src_root/main.py"), "x = 1\n").unwrap();
        fs::write(dir.join("src_root/pkg/a.py"), "print(\"a\")\n").unwrap();
    }

    #[test]
    fn vector_g_source_root_all() {
        let dir = tempfile::tempdir().unwrap();
        src_tree(dir.path());
        let s = spec(ImageSpec {
            name: "src-img".into(),
            source_root: Some("src_root".into()),
            source_copy_mode: Some(CopyFileDetection::All),
            packages: strs(&["numpy"]),
            ..Default::default()
        });
        let c = ctx(dir.path());
        assert_eq!(
            s.tag_repr(&c).unwrap(),
            "{'name': 'src-img', 'source_root': '3a2ae8c77ee1c9c93ad9f44666f1796c', 'packages': ['numpy'], 'platform': 'linux/amd64', 'source_copy_mode': <CopyFileDetection.ALL: 2>}"
        );
        assert_eq!(s.image_name(&c).unwrap(), "src-img:Ny_1QKEPSqz0oxOnq_GO9w");
        // Ignored files do not change the digest (StandardIgnore).
        fs::create_dir_all(dir.path().join("src_root/pkg/__pycache__")).unwrap();
        fs::write(
            dir.path()
                .join("src_root/pkg/__pycache__/a.cpython-311.pyc"),
            "junk",
        )
        .unwrap();
        fs::write(dir.path().join("src_root/x.pyc"), "junk").unwrap();
        assert_eq!(s.image_name(&c).unwrap(), "src-img:Ny_1QKEPSqz0oxOnq_GO9w");
        // An absolute source_root gives the same digest.
        let abs = ImageSpec {
            source_root: Some(dir.path().join("src_root").display().to_string()),
            ..s.clone()
        };
        assert!(abs
            .tag_repr(&c)
            .unwrap()
            .contains("'source_root': '3a2ae8c77ee1c9c93ad9f44666f1796c'"));
        // source_copy_mode without source_root is flytekit's ValueError.
        let bad = ImageSpec {
            source_root: None,
            ..s
        };
        assert!(matches!(
            bad.tag(&c),
            Err(ImageSpecError::MissingSourceRoot { .. })
        ));
    }

    #[test]
    fn vector_h_copy() {
        let dir = tempfile::tempdir().unwrap();
        src_tree(dir.path());
        fs::write(
            dir.path().join("requirements.txt"),
            "numpy==1.26.4\npandas==2.2.2\n",
        )
        .unwrap();
        let s = spec(ImageSpec {
            name: "cp-img".into(),
            copy: strs(&["requirements.txt", "src_root"]),
            ..Default::default()
        });
        let c = ctx(dir.path());
        assert!(
            s.tag_repr(&c)
                .unwrap()
                .contains("'copy': 'ccdf8cf70e8135d13cd20db1b9a104f7'"),
            "{}",
            s.tag_repr(&c).unwrap()
        );
        assert_eq!(s.image_name(&c).unwrap(), "cp-img:2ihFsoU0BjmdYU87y5gIbg");
    }

    #[test]
    fn vector_i_nested_base() {
        let base = spec(ImageSpec {
            name: "base".into(),
            registry: Some("ghcr.io/org".into()),
            packages: strs(&["numpy"]),
            ..Default::default()
        });
        let c = ctx(Path::new("/nonexistent"));
        assert_eq!(
            base.image_name(&c).unwrap(),
            "ghcr.io/org/base:X5THiGd_ZJu_WeYWf5kc4g"
        );
        let child = spec(ImageSpec {
            name: "child".into(),
            registry: Some("ghcr.io/org".into()),
            base_image: Some(BaseImage::Spec(Box::new(base))),
            packages: strs(&["pandas"]),
            ..Default::default()
        });
        assert!(child
            .tag_repr(&c)
            .unwrap()
            .contains("'base_image': 'ghcr.io/org/base:X5THiGd_ZJu_WeYWf5kc4g'"));
        assert_eq!(
            child.image_name(&c).unwrap(),
            "ghcr.io/org/child:Etia05_3IBySEYGLfVyxQg"
        );
        assert!(child
            .id_repr()
            .contains("'base_image': {'name': 'base', 'registry': 'ghcr.io/org'"));
    }

    #[test]
    fn runtime_packages_and_registry_config() {
        let c = ctx(Path::new("/nonexistent"));
        let s = spec(ImageSpec {
            name: "my-image".into(),
            packages: strs(&["numpy==1.26.4", "pandas"]),
            ..Default::default()
        });
        let with = ImageSpec {
            runtime_packages: strs(&["x"]),
            pip_secret_mounts: Some(vec![("a".into(), "b".into())]),
            builder: Some("envd".into()),
            ..s.clone()
        };
        assert_eq!(with.tag(&c).unwrap(), s.tag(&c).unwrap());
        assert_eq!(with.id(), s.id());
        let rc = ImageSpec {
            registry_config: Some("cfg.json".into()),
            ..s.clone()
        };
        assert_eq!(rc.tag(&c).unwrap(), s.tag(&c).unwrap());
        assert_ne!(rc.id(), s.id());
    }

    #[test]
    fn real_names_override() {
        let mut c = ctx(Path::new("/nonexistent"));
        let s = spec(ImageSpec::default());
        c.real_names.insert(
            "flytekit:fv8aVGdGU6GT1t5W98ZQPA".into(),
            "cr.union.ai/x/flytekit:abc".into(),
        );
        assert_eq!(s.image_name(&c).unwrap(), "cr.union.ai/x/flytekit:abc");
    }
}
