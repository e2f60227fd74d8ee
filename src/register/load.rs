//! Loading: import the user's modules, compute each ImageSpec's image name, build the code
//! archive. No network.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use union_image::{HostEnv, ImageSpec, TagContext};
use union_package::{Archive, ArchiveOptions, CopyMode, FileList, IgnoreSet, ListOptions};

use super::{PlanOptions, Progress, RegisterError};
use crate::discovery::ModuleSet;
use crate::entity::Entity;
use crate::python::{LoadedModules, PythonSession, SerializeSettings};

/// flytekit's default task image for this Python and flytekit (`DefaultImages.default_image()`).
pub fn flytekit_default_image(flytekit_version: &str) -> String {
    let py = crate::python::env::BUILD_VERSION
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    format!("cr.flyte.org/flyteorg/flytekit:py{py}-{flytekit_version}")
}

/// An ImageSpec used by tasks, with the name union computed for it.
#[derive(Debug, Clone)]
pub struct PlannedImage {
    /// flytekit's `ImageSpec.id` (how serialization finds it in the ImageConfig).
    pub spec_id: String,
    pub spec: ImageSpec,
    /// The full image reference, byte-identical to flytekit's `image_name()`.
    pub name: String,
    pub tasks: Vec<String>,
}

/// The user's code, imported: what every command that packages or builds starts from.
pub struct Code {
    pub set: ModuleSet,
    pub session: PythonSession,
    pub entities: Vec<Entity>,
    /// Files of the loaded modules and the prefixes of installed packages (`--copy auto`).
    pub modules: LoadedModules,
    pub flytekit_version: String,
    pub git_repo: Option<String>,
}

/// Everything known after loading the user's code, before anything is uploaded or registered.
pub struct Loaded {
    pub set: ModuleSet,
    pub session: PythonSession,
    pub entities: Vec<Entity>,
    pub images: Vec<PlannedImage>,
    pub files: Option<FileList>,
    pub archive: Option<(Archive, Vec<u8>)>,
    pub flytekit_version: String,
    pub git_repo: Option<String>,
    pub loaded_modules: Vec<PathBuf>,
    /// Where ImageSpecs' relative paths (requirements, copy, source_root) are resolved.
    pub base_dir: PathBuf,
}

pub(super) fn base_settings(
    opts: &PlanOptions,
    root: &Path,
    default_image: &str,
    git_repo: Option<String>,
) -> SerializeSettings {
    SerializeSettings {
        project: (!opts.for_package).then(|| opts.project.clone()),
        domain: (!opts.for_package).then(|| opts.domain.clone()),
        version: None,
        root: root.to_string_lossy().into_owned(),
        default_image: default_image.to_string(),
        images: opts.images.clone(),
        spec_images: BTreeMap::new(),
        fast: opts.copy != CopyMode::None,
        destination_dir: (opts.copy != CopyMode::None).then(|| opts.destination_dir.clone()),
        distribution_location: None,
        env: opts.env.clone(),
        // pyflyte register and run --remote record the origin remote ("" outside a git
        // repository); pyflyte package sets nothing, so its specs carry null.
        git_repo: if opts.for_package { None } else { git_repo },
    }
}

/// Import the modules of `set` and describe what they define.
pub fn load_code(set: ModuleSet, progress: &Progress) -> Result<Code, RegisterError> {
    progress.phase(&format!(
        "Loading {} module(s) from {}",
        set.modules.len(),
        set.root.display()
    ));
    if let Ok(cwd) = std::env::current_dir() {
        if cwd != set.root && cwd.starts_with(&set.root) {
            // Running inside a package: its parent holds the code that gets imported and packaged.
            progress.note(&format!(
                "note: the project root is {} (the first directory upward without __init__.py), above the current directory; module names and the code archive start there",
                set.root.display()
            ));
        }
    }
    let env = crate::python::env::locate()?;
    let session = PythonSession::start(env)?;
    let entities = session.discover_names(&set.root, &set.modules)?;
    if entities.is_empty() {
        let shown: Vec<String> = set.modules.iter().map(|m| m.to_string()).collect();
        return Err(RegisterError::NoEntities {
            what: if shown.len() == 1 {
                format!("module `{}`", shown[0])
            } else {
                format!("the {} modules `{}`", shown.len(), shown.join("`, `"))
            },
            root: set.root.clone(),
        });
    }
    let modules = session.loaded_module_files(&set.root)?;
    let flytekit_version = session.flytekit_version()?;
    let git_repo = session.git_repo(&set.root)?;
    check_duplicate_names(&entities)?;
    progress.done(&format!("{} entities", entities.len()));
    Ok(Code {
        set,
        session,
        entities,
        modules,
        flytekit_version,
        git_repo,
    })
}

/// Every ImageSpec the loaded tasks use (plus `--image spec.yaml` ones), with its image name
/// computed as flytekit computes it: flytekit's copy handling first (it can change the spec),
/// then our own tag. Returns the images and where their relative paths resolve.
pub fn images_of(
    code: &Code,
    opts: &PlanOptions,
) -> Result<(Vec<PlannedImage>, PathBuf), RegisterError> {
    let default_image = opts
        .default_image
        .clone()
        .unwrap_or_else(|| flytekit_default_image(&code.flytekit_version));
    let settings = base_settings(opts, &code.set.root, &default_image, code.git_repo.clone());
    let uses = code.session.image_specs(&settings)?;
    let host = HostEnv::current();
    let mut specs = Vec::new();
    for u in uses {
        let mut spec = ImageSpec::from_bridge_json(&u.spec, &host).map_err(|source| {
            RegisterError::ImageSpec {
                spec: u
                    .spec
                    .get("name")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?")
                    .to_string(),
                users: u.tasks.join(", "),
                source,
            }
        })?;
        if let Some(registry) = &opts.default_registry {
            let named = spec.registry.as_deref().is_some_and(|r| !r.is_empty());
            let remote = union_image::pipeline::is_remote(&spec, opts.default_builder.as_deref());
            // Before the tag is computed: the tag hashes the registry, and must be the one
            // flytekit computes for the same spec written with `registry=...`.
            if !named && !remote {
                spec.registry = Some(registry.clone());
            }
        }
        specs.push((u, spec));
    }
    let cwd = std::env::current_dir().map_err(RegisterError::CurrentDir)?;
    let base_dir =
        union_image::pipeline::spec_base_dir(specs.iter().map(|(_, s)| s), &cwd, &code.set.root);
    let mut ctx = TagContext::new(&base_dir);
    ctx.loaded_modules = code.modules.files.clone();
    let mut images = Vec::new();
    for (u, spec) in specs {
        let name = spec
            .image_name(&ctx)
            .map_err(|source| RegisterError::ImageSpec {
                spec: spec.name.clone(),
                users: u.tasks.join(", "),
                source,
            })?;
        images.push(PlannedImage {
            spec_id: u.id,
            spec,
            name,
            tasks: u.tasks,
        });
    }
    for y in &opts.yaml_images {
        if !images.iter().any(|i| i.name == y.name) {
            images.push(PlannedImage {
                spec_id: format!("yaml:{}", y.path.display()),
                spec: y.spec.clone(),
                name: y.name.clone(),
                tasks: vec![format!("--image {}", y.path.display())],
            });
        }
    }
    Ok((images, base_dir))
}

/// Import the user's code, compute image names, and build the code archive (no network).
pub fn load(
    set: ModuleSet,
    opts: &PlanOptions,
    progress: &Progress,
) -> Result<Loaded, RegisterError> {
    let code = load_code(set, progress)?;
    let (images, base_dir) = images_of(&code, opts)?;
    let (files, archive) = if opts.copy == CopyMode::None {
        (None, None)
    } else {
        let (files, archive) = package(&code, opts.copy, progress)?;
        (Some(files), Some(archive))
    };
    Ok(Loaded {
        set: code.set,
        session: code.session,
        entities: code.entities,
        images,
        files,
        archive,
        flytekit_version: code.flytekit_version,
        git_repo: code.git_repo,
        loaded_modules: code.modules.files,
        base_dir,
    })
}

/// The code archive: the project's files as `copy` selects them.
fn package(
    code: &Code,
    copy: CopyMode,
    progress: &Progress,
) -> Result<(FileList, (Archive, Vec<u8>)), RegisterError> {
    progress.phase("Packaging code");
    crate::process::test_pause_point("packaging");
    let list_opts = ListOptions {
        loaded_modules: code.modules.files.clone(),
        installed_prefixes: code.modules.prefixes.clone(),
        ..ListOptions::default()
    };
    let files = union_package::list_files_with(
        &code.set.root,
        copy,
        &IgnoreSet::fast_register(),
        &list_opts,
    )
    .map_err(RegisterError::Package)?;
    let (archive, bytes) = union_package::build_archive(&files, &ArchiveOptions::default())
        .map_err(RegisterError::Package)?;
    let ignored: usize = files.ignored.len();
    let mut note = format!(
        "{} files, {} → {}",
        archive.file_count,
        union_diagnostics::human_bytes(archive.uncompressed_size),
        archive.file_name
    );
    if ignored > 0 {
        let counts = files.ignored_counts();
        let by: Vec<String> = counts
            .iter()
            .map(|(src, n)| format!("{n} by {src}"))
            .collect();
        note.push_str(&format!(" ({} ignored: {})", ignored, by.join(", ")));
    }
    for v in &files.virtualenvs {
        progress.warn(&format!(
            "the virtualenv {} is inside the project and will be uploaded; add it to .flyteignore or .gitignore",
            v.display()
        ));
    }
    progress.done(&note);
    Ok((files, (archive, bytes)))
}

fn check_duplicate_names(entities: &[Entity]) -> Result<(), RegisterError> {
    let mut seen: HashMap<(&'static str, &str), &Entity> = HashMap::new();
    for e in entities {
        if let Some(prev) = seen.insert((e.kind.label(), e.name.as_str()), e) {
            let place = |x: &Entity| match (&x.module, &x.attr) {
                (Some(m), Some(a)) => format!("{m}.{a}"),
                _ => x.name.clone(),
            };
            return Err(RegisterError::DuplicateName {
                kind: e.kind.label(),
                name: e.name.clone(),
                first: place(prev),
                second: place(e),
            });
        }
    }
    Ok(())
}
