//! Packaging and registration: from paths to serialized specs, a code archive and a version, then
//! to FlyteAdmin. Shared by `union package`, `union register` and `union run --remote`.
//!
//! Python work (import, serialize) happens on the calling thread, which must be the main thread;
//! network work is async and runs on a runtime the command owns.

pub mod images;
pub mod progress;
pub mod upload;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use md5::{Digest, Md5};
use prost::Message;

use crate::admin::{id_text, AdminClient, AdminError, Created};
use crate::diagnostics::Diagnostic;
use crate::discovery::ModuleSet;
use crate::entity::Entity;
use crate::idl::flyteidl::{admin, core};
use crate::image::{HostEnv, ImageSpec, TagContext};
use crate::package::{self, Archive, ArchiveOptions, CopyMode, FileList, IgnoreSet, ListOptions};
use crate::python::{PyUserError, PythonSession, SerializeSettings, SerializedEntity};
pub use progress::Progress;

/// flytekit's default task image for this Python and flytekit (`DefaultImages.default_image()`).
pub fn flytekit_default_image(flytekit_version: &str) -> String {
    let py = crate::python::env::BUILD_VERSION
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    format!("cr.flyte.org/flyteorg/flytekit:py{py}-{flytekit_version}")
}

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub project: String,
    pub domain: String,
    /// `--version`; derived from the content when `None`.
    pub version: Option<String>,
    pub copy: CopyMode,
    /// Where the code lands in the container (`--destination-dir`, pyflyte's default `/root`).
    pub destination_dir: String,
    /// `--image URI` (the default image) and `--image NAME=URI`.
    pub default_image: Option<String>,
    pub images: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    /// Serialize ids with empty project/domain/version (pyflyte package).
    pub for_package: bool,
    /// ImageSpecs given as `--image spec.yaml`: built like tasks' images.
    pub yaml_images: Vec<crate::commands::common::YamlImage>,
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

/// A serialized entity, decoded.
#[derive(Debug, Clone)]
pub enum Spec {
    Task(admin::TaskSpec),
    Workflow(admin::WorkflowSpec),
    LaunchPlan(admin::LaunchPlan),
}

/// One entity to register.
#[derive(Debug, Clone)]
pub struct PlannedEntity {
    pub spec: Spec,
    pub pb: Vec<u8>,
    pub auto_activate: bool,
}

impl PlannedEntity {
    pub fn id(&self) -> core::Identifier {
        match &self.spec {
            Spec::Task(t) => t
                .template
                .as_ref()
                .and_then(|t| t.id.clone())
                .unwrap_or_default(),
            Spec::Workflow(w) => w
                .template
                .as_ref()
                .and_then(|t| t.id.clone())
                .unwrap_or_default(),
            Spec::LaunchPlan(lp) => lp.id.clone().unwrap_or_default(),
        }
    }
    pub fn kind(&self) -> &'static str {
        match &self.spec {
            Spec::Task(_) => "task",
            Spec::Workflow(_) => "workflow",
            Spec::LaunchPlan(_) => "launch plan",
        }
    }
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

/// The directory ImageSpec paths are relative to. flytekit resolves them against the working
/// directory, so that is used whenever the files are there; when they are not but are under the
/// project root (running `union` from a parent directory, where flytekit would fail), the project
/// root is used. The file contents, not their paths, go into the tag, so tags are the same.
pub fn spec_base_dir<'a>(
    specs: impl Iterator<Item = &'a ImageSpec>,
    cwd: &Path,
    root: &Path,
) -> PathBuf {
    fn paths(s: &ImageSpec, out: &mut Vec<String>) {
        out.extend(s.requirements.iter().filter(|r| !r.is_empty()).cloned());
        out.extend(s.copy.iter().flatten().cloned());
        out.extend(s.source_root.iter().cloned());
        if let Some(crate::image::spec::BaseImage::Spec(b)) = &s.base_image {
            paths(b, out);
        }
    }
    let mut rel = Vec::new();
    for s in specs {
        paths(s, &mut rel);
    }
    let rel: Vec<&String> = rel
        .iter()
        .filter(|p| !Path::new(p.as_str()).is_absolute())
        .collect();
    let all_in = |dir: &Path| rel.iter().all(|p| dir.join(p.as_str()).exists());
    if rel.is_empty() || all_in(cwd) || !all_in(root) {
        cwd.to_path_buf()
    } else {
        root.to_path_buf()
    }
}

fn py(session: &PythonSession) -> impl Fn(PyUserError) -> Diagnostic + '_ {
    move |e| e.into_diagnostic(session.env())
}

fn base_settings(
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

/// Import the user's code, compute image names, and build the code archive (no network).
pub fn load(set: ModuleSet, opts: &PlanOptions, progress: &Progress) -> Result<Loaded, Diagnostic> {
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
    let entities = session
        .discover_names(&set.root, &set.modules)
        .map_err(py(&session))?;
    if entities.is_empty() {
        let shown: Vec<String> = set.modules.iter().map(|m| m.to_string()).collect();
        return Err(Diagnostic::new(format!(
            "no tasks, workflows or launch plans in {} (imported from project root {})",
            if shown.len() == 1 {
                format!("module `{}`", shown[0])
            } else {
                format!("the {} modules `{}`", shown.len(), shown.join("`, `"))
            },
            set.root.display()
        ))
        .hint("nothing was uploaded or registered; give the package or files that define your @task and @workflow functions (for example `workflows/`)"));
    }
    let info = session
        .loaded_module_files(&set.root)
        .map_err(py(&session))?;
    let flytekit_version = session.flytekit_version().map_err(py(&session))?;
    let git_repo = session.git_repo(&set.root).map_err(py(&session))?;
    check_duplicate_names(&entities)?;
    progress.done(&format!("{} entities", entities.len()));

    // Images: flytekit's copy handling first (it can change the spec), then our own tag.
    let default_image = opts
        .default_image
        .clone()
        .unwrap_or_else(|| flytekit_default_image(&flytekit_version));
    let settings = base_settings(opts, &set.root, &default_image, git_repo.clone());
    let uses = session.image_specs(&settings).map_err(py(&session))?;
    let host = HostEnv::current();
    let mut specs = Vec::new();
    for u in uses {
        let spec = ImageSpec::from_bridge_json(&u.spec, &host).map_err(|e| {
            Diagnostic::new(format!("ImageSpec used by {}: {e}", u.tasks.join(", ")))
        })?;
        specs.push((u, spec));
    }
    let cwd = std::env::current_dir()
        .map_err(|e| Diagnostic::new(format!("cannot read the current directory: {e}")))?;
    let base_dir = spec_base_dir(specs.iter().map(|(_, s)| s), &cwd, &set.root);
    let mut ctx = TagContext::new(&base_dir);
    ctx.loaded_modules = info.files.clone();
    let mut images = Vec::new();
    for (u, spec) in specs {
        let name = spec.image_name(&ctx).map_err(|e| {
            Diagnostic::new(format!(
                "ImageSpec `{}` (used by {}): {e}",
                spec.name,
                u.tasks.join(", ")
            ))
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

    // The code archive.
    let (files, archive) = if opts.copy == CopyMode::None {
        (None, None)
    } else {
        progress.phase("Packaging code");
        crate::process::test_pause_point("packaging");
        let list_opts = ListOptions {
            loaded_modules: info.files.clone(),
            installed_prefixes: info.prefixes.clone(),
            ..ListOptions::default()
        };
        let files = package::list_files_with(
            &set.root,
            opts.copy,
            &IgnoreSet::fast_register(),
            &list_opts,
        )
        .map_err(|e| Diagnostic::new(format!("cannot list the project's files: {e}")))?;
        let (archive, bytes) = package::build_archive(&files, &ArchiveOptions::default())
            .map_err(|e| Diagnostic::new(format!("cannot build the code archive: {e}")))?;
        let ignored: usize = files.ignored.len();
        let mut note = format!(
            "{} files, {} → {}",
            archive.file_count,
            human_bytes(archive.uncompressed_size),
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
        (Some(files), Some((archive, bytes)))
    };
    let loaded_modules = info.files;
    Ok(Loaded {
        set,
        session,
        entities,
        images,
        files,
        archive,
        flytekit_version,
        git_repo,
        loaded_modules,
        base_dir,
    })
}

fn check_duplicate_names(entities: &[Entity]) -> Result<(), Diagnostic> {
    let mut seen: HashMap<(&'static str, &str), &Entity> = HashMap::new();
    for e in entities {
        if let Some(prev) = seen.insert((e.kind.label(), e.name.as_str()), e) {
            let place = |x: &Entity| match (&x.module, &x.attr) {
                (Some(m), Some(a)) => format!("{m}.{a}"),
                _ => x.name.clone(),
            };
            return Err(Diagnostic::new(format!(
                "two {}s are named `{}` ({} and {})",
                e.kind.label(),
                e.name,
                place(prev),
                place(e)
            ))
            .hint("entity names must be unique; rename one of them (for launch plans, pass a different name=)"));
        }
    }
    Ok(())
}

/// Serialize every entity with the given version and archive location.
pub fn serialize(
    loaded: &Loaded,
    opts: &PlanOptions,
    version: Option<&str>,
    distribution_location: Option<&str>,
) -> Result<Vec<PlannedEntity>, Diagnostic> {
    let default_image = opts
        .default_image
        .clone()
        .unwrap_or_else(|| flytekit_default_image(&loaded.flytekit_version));
    let mut settings = base_settings(
        opts,
        &loaded.set.root,
        &default_image,
        loaded.git_repo.clone(),
    );
    settings.version = if opts.for_package {
        None
    } else {
        version.map(str::to_string)
    };
    settings.distribution_location = distribution_location.map(str::to_string);
    settings.spec_images = loaded
        .images
        .iter()
        .map(|i| (i.spec_id.clone(), i.name.clone()))
        .collect();
    let raw = loaded
        .session
        .serialize(&settings)
        .map_err(py(&loaded.session))?;
    decode_all(raw)
}

fn decode_all(raw: Vec<SerializedEntity>) -> Result<Vec<PlannedEntity>, Diagnostic> {
    let mut out: Vec<PlannedEntity> = Vec::new();
    let mut by_key: HashMap<(String, String), usize> = HashMap::new();
    for r in raw {
        let bad = |e: prost::DecodeError| {
            Diagnostic::new(format!(
                "cannot decode the {} spec of {}: {e}",
                r.kind, r.name
            ))
        };
        let spec = match r.kind.as_str() {
            "task" => Spec::Task(admin::TaskSpec::decode(r.pb.as_slice()).map_err(bad)?),
            "workflow" => {
                Spec::Workflow(admin::WorkflowSpec::decode(r.pb.as_slice()).map_err(bad)?)
            }
            "launch_plan" => {
                Spec::LaunchPlan(admin::LaunchPlan::decode(r.pb.as_slice()).map_err(bad)?)
            }
            other => {
                return Err(Diagnostic::new(format!(
                    "unexpected entity kind `{other}` from serialization"
                )))
            }
        };
        let key = (r.kind.clone(), r.name.clone());
        if let Some(&i) = by_key.get(&key) {
            if out[i].pb != r.pb {
                return Err(Diagnostic::new(format!(
                    "two different {}s serialize under the same name `{}`",
                    r.kind.replace('_', " "),
                    r.name
                ))
                .hint("entity names must be unique; rename one of them"));
            }
            continue;
        }
        by_key.insert(key, out.len());
        out.push(PlannedEntity {
            spec,
            pb: r.pb,
            auto_activate: r.auto_activate,
        });
    }
    Ok(out)
}

/// Stands in for the version during serialization (same length as a derived version, so it can be
/// replaced in the encoded bytes without touching any length prefix).
pub const VERSION_PLACEHOLDER: &str = "uNiOnVeRsIoNpLaCeHoLdR";
/// flytekit's placeholder for the archive location when fast settings carry none.
pub const LOCATION_PLACEHOLDER: &str = "{{ .remote_package_path }}";

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// Serialize once for registration: the version (given, or derived from specs that do not depend
/// on where the archive is uploaded) and the archive location are filled in afterwards, so a
/// dry run and a real run agree on the version and Python serializes only once.
pub fn serialize_for_registration(
    loaded: &Loaded,
    opts: &PlanOptions,
    location: Option<&str>,
) -> Result<(Vec<PlannedEntity>, String), Diagnostic> {
    let given = opts.version.clone();
    let probe_version = given
        .clone()
        .unwrap_or_else(|| VERSION_PLACEHOLDER.to_string());
    let mut entities = serialize(loaded, opts, Some(&probe_version), None)?;
    let version = match given {
        Some(v) => v,
        None => {
            let v = derive_version(
                loaded.archive.as_ref().map(|(a, _)| &a.md5),
                &entities,
                &loaded.images,
            );
            debug_assert_eq!(v.len(), VERSION_PLACEHOLDER.len());
            let expected: usize = entities
                .iter()
                .map(|e| count(&e.pb, VERSION_PLACEHOLDER.as_bytes()))
                .sum();
            let mut replaced = Vec::with_capacity(entities.len());
            for e in &entities {
                let pb = replace_bytes(&e.pb, VERSION_PLACEHOLDER.as_bytes(), v.as_bytes());
                replaced.push(SerializedEntity {
                    kind: kind_key(&e.spec).into(),
                    name: e.id().name,
                    pb,
                    auto_activate: e.auto_activate,
                });
            }
            let redecoded = decode_all(replaced)?;
            let ids_ok = redecoded.iter().all(|e| e.id().version == v);
            entities = if expected == 0 || !ids_ok {
                // Cannot happen with flytekit's ids; serialize again rather than guess.
                serialize(loaded, opts, Some(&v), None)?
            } else {
                redecoded
            };
            v
        }
    };
    let entities = match location {
        None => entities,
        Some(loc) => {
            let mut patched = Vec::with_capacity(entities.len());
            let mut complete = true;
            for mut e in entities {
                if let Spec::Task(t) = &mut e.spec {
                    if let Some(c) = t.template.as_mut().and_then(|t| match &mut t.target {
                        Some(core::task_template::Target::Container(c)) => Some(c),
                        _ => None,
                    }) {
                        for a in c.args.iter_mut() {
                            if a == LOCATION_PLACEHOLDER {
                                *a = loc.to_string();
                            }
                        }
                    }
                    e.pb = t.encode_to_vec();
                    if count(&e.pb, LOCATION_PLACEHOLDER.as_bytes()) > 0 {
                        complete = false; // e.g. a pod template: let flytekit place it
                    }
                }
                patched.push(e);
            }
            if complete {
                patched
            } else {
                serialize(loaded, opts, Some(&version), Some(loc))?
            }
        }
    };
    Ok((entities, version))
}

fn kind_key(s: &Spec) -> &'static str {
    match s {
        Spec::Task(_) => "task",
        Spec::Workflow(_) => "workflow",
        Spec::LaunchPlan(_) => "launch_plan",
    }
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// A content-addressed version: the archive, every serialized spec and every image name.
/// Changing code or an image changes it; nothing else does.
pub fn derive_version(
    archive_md5: Option<&[u8; 16]>,
    entities: &[PlannedEntity],
    images: &[PlannedImage],
) -> String {
    let mut h = Md5::new();
    h.update(b"union-version-1\0");
    if let Some(m) = archive_md5 {
        h.update(m);
    }
    for e in entities {
        h.update(e.kind().as_bytes());
        h.update([0]);
        h.update((e.pb.len() as u64).to_le_bytes());
        h.update(&e.pb);
    }
    let mut names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
    names.sort();
    for n in names {
        h.update(n.as_bytes());
        h.update([0]);
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

pub use crate::diagnostics::human_bytes;

/// Entity ids referenced by a workflow's nodes, by kind (tasks, launch plans, subworkflows).
fn node_refs(wf: &admin::WorkflowSpec) -> (BTreeSet<String>, BTreeSet<String>) {
    fn walk(n: &core::Node, lps: &mut BTreeSet<String>, wfs: &mut BTreeSet<String>) {
        use core::node::Target;
        use core::workflow_node::Reference;
        match &n.target {
            Some(Target::WorkflowNode(w)) => match &w.reference {
                Some(Reference::LaunchplanRef(id)) => {
                    lps.insert(id_text(id));
                }
                Some(Reference::SubWorkflowRef(id)) => {
                    wfs.insert(id_text(id));
                }
                None => {}
            },
            Some(Target::BranchNode(b)) => {
                if let Some(ie) = &b.if_else {
                    let mut all: Vec<&core::Node> = Vec::new();
                    if let Some(c) = &ie.case {
                        if let Some(n) = &c.then_node {
                            all.push(n);
                        }
                    }
                    for c in &ie.other {
                        if let Some(n) = &c.then_node {
                            all.push(n);
                        }
                    }
                    if let Some(core::if_else_block::Default::ElseNode(n)) = &ie.default {
                        all.push(n);
                    }
                    for n in all {
                        walk(n, lps, wfs);
                    }
                }
            }
            Some(Target::ArrayNode(a)) => {
                if let Some(n) = &a.node {
                    walk(n, lps, wfs);
                }
            }
            _ => {}
        }
    }
    let mut lps = BTreeSet::new();
    let mut wfs = BTreeSet::new();
    for t in wf.template.iter().chain(wf.sub_workflows.iter()) {
        for n in &t.nodes {
            walk(n, &mut lps, &mut wfs);
        }
    }
    (lps, wfs)
}

/// Workflows and launch plans grouped into layers: each layer only depends on earlier ones.
pub fn dependency_layers(entities: &[PlannedEntity]) -> Vec<Vec<usize>> {
    let mut deps: Vec<BTreeSet<String>> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut idx: Vec<usize> = Vec::new();
    for (i, e) in entities.iter().enumerate() {
        let d = match &e.spec {
            Spec::Task(_) => continue,
            Spec::Workflow(w) => node_refs(w).0,
            Spec::LaunchPlan(lp) => lp
                .spec
                .as_ref()
                .and_then(|s| s.workflow_id.as_ref())
                .map(|id| BTreeSet::from([format!("wf:{}", id_text(id))]))
                .unwrap_or_default(),
        };
        let key = match &e.spec {
            Spec::Workflow(_) => format!("wf:{}", id_text(&e.id())),
            _ => id_text(&e.id()),
        };
        deps.push(d);
        ids.push(key);
        idx.push(i);
    }
    let known: BTreeSet<String> = ids.iter().cloned().collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut remaining: Vec<usize> = (0..ids.len()).collect();
    let mut layers = Vec::new();
    while !remaining.is_empty() {
        let (ready, rest): (Vec<usize>, Vec<usize>) = remaining.iter().partition(|&&k| {
            deps[k]
                .iter()
                .all(|d| done.contains(d) || !known.contains(d))
        });
        if ready.is_empty() {
            // A cycle cannot be registered in any order; keep flytekit's order for the rest.
            layers.push(rest.iter().map(|&k| idx[k]).collect());
            break;
        }
        for &k in &ready {
            done.insert(ids[k].clone());
        }
        layers.push(ready.iter().map(|&k| idx[k]).collect());
        remaining = rest;
    }
    layers
}

/// Counts of what registration did.
#[derive(Debug, Default, Clone)]
pub struct Registered {
    pub new: usize,
    pub existed: usize,
    pub failed: Vec<String>,
    pub activated: usize,
}

/// Register everything: tasks concurrently, then workflows and launch plans in dependency layers
/// (each layer concurrently), then activate launch plans.
pub async fn register_entities(
    client: &AdminClient,
    entities: &[PlannedEntity],
    activate_all: bool,
    skip_errors: bool,
    progress: &Progress,
) -> Result<Registered, Diagnostic> {
    use futures_util::stream::{self, StreamExt};
    const CONCURRENCY: usize = 32;
    let mut out = Registered::default();

    async fn one(client: &AdminClient, e: &PlannedEntity) -> Result<Created, AdminError> {
        let id = e.id();
        match &e.spec {
            Spec::Task(t) => client.create_task(id, t.clone()).await,
            Spec::Workflow(w) => client.create_workflow(id, w.clone()).await,
            Spec::LaunchPlan(lp) => {
                client
                    .create_launch_plan(id, lp.spec.clone().unwrap_or_default())
                    .await
            }
        }
    }

    let tasks: Vec<usize> = entities
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.spec, Spec::Task(_)))
        .map(|(i, _)| i)
        .collect();
    let mut layers = vec![tasks];
    layers.extend(dependency_layers(entities));
    let total: usize = layers.iter().map(Vec::len).sum();
    progress.phase(&format!(
        "Registering {total} entities with {}",
        client.endpoint()
    ));
    // A signal now must not leave the user guessing what is registered: stop sending, say how far
    // it got, and exit (a second signal exits at once).
    let _cooperative = crate::process::Cooperative::enter();
    crate::process::test_pause_point("registering");
    let stopped = |sig: i32, done: usize| {
        Diagnostic::new(format!(
            "{} while registering: {done} of {total} entities were registered, the others were not",
            crate::process::signal_word(sig)
        ))
        .hint("registering is idempotent: run the same command again to register the rest")
        .exit_code(crate::process::signal_exit_code(sig))
    };
    for layer in layers {
        let mut pending = stream::iter(layer.into_iter())
            .map(|i| async move { (i, one(client, &entities[i]).await) })
            .buffer_unordered(CONCURRENCY);
        let mut results: Vec<(usize, Result<Created, AdminError>)> = Vec::new();
        loop {
            let done = out.new + out.existed + out.failed.len();
            let next = tokio::select! {
                biased;
                sig = crate::process::interruption() => return Err(stopped(sig, done)),
                next = pending.next() => next,
            };
            let Some((i, r)) = next else { break };
            let r = match r {
                Err(err) if is_connection_error(&err) => {
                    return Err(admin_diagnostic(err).hint(format!(
                        "{done} of {total} entities were registered before this; registering is idempotent, so running the command again finishes the job"
                    )));
                }
                Err(err) if !skip_errors => {
                    let mut d = admin_diagnostic(err);
                    if done > 0 {
                        d = d.hint(format!(
                            "{done} of {total} entities were registered before this"
                        ));
                    }
                    return Err(d);
                }
                r => r,
            };
            match &r {
                Ok(Created::New) => out.new += 1,
                Ok(Created::AlreadyExisted) => out.existed += 1,
                Err(_) => out.failed.push(id_text(&entities[i].id())),
            }
            results.push((i, r));
        }
        // Reported in flytekit's order, whatever order the server answered in.
        results.sort_by_key(|(i, _)| *i);
        for (i, r) in results {
            let e = &entities[i];
            match r {
                Ok(Created::New) => {
                    progress.item(&format!("{} {}", e.kind(), id_text(&e.id())), "registered");
                }
                Ok(Created::AlreadyExisted) => {
                    progress.item(
                        &format!("{} {}", e.kind(), id_text(&e.id())),
                        "already registered",
                    );
                }
                Err(err) => progress.warn(&format!("{} {}: {err}", e.kind(), id_text(&e.id()))),
            }
        }
    }
    // Activation: launch plans with a schedule, or all with --activate-launchplans.
    for e in entities {
        if let Spec::LaunchPlan(_) = e.spec {
            if activate_all || e.auto_activate {
                if out.failed.contains(&id_text(&e.id())) {
                    continue;
                }
                if let Some(sig) = crate::process::interrupted() {
                    return Err(stopped(sig, out.new + out.existed)
                        .hint("launch plans were not activated yet"));
                }
                client
                    .activate_launch_plan(e.id())
                    .await
                    .map_err(admin_diagnostic)?;
                out.activated += 1;
                progress.item(&format!("launch plan {}", id_text(&e.id())), "activated");
            }
        }
    }
    let mut summary = format!("{} new, {} already registered", out.new, out.existed);
    if out.activated > 0 {
        summary.push_str(&format!(", {} activated", out.activated));
    }
    if !out.failed.is_empty() {
        summary.push_str(&format!(", {} failed (skipped)", out.failed.len()));
    }
    progress.done(&summary);
    Ok(out)
}

/// What [`publish`] did.
pub struct Published {
    pub entities: Vec<PlannedEntity>,
    pub version: String,
    pub registered: Registered,
}

/// Connect to the backend named by `settings` (before anything slow, so that a backend that is
/// down is reported at once).
pub fn connect(
    rt: &tokio::runtime::Runtime,
    settings: &crate::config::Settings,
    progress: &Progress,
) -> Result<AdminClient, Diagnostic> {
    progress.phase(&format!("Connecting to {}", settings.endpoint));
    crate::process::test_pause_point("connecting");
    let client = rt
        .block_on(AdminClient::connect(settings))
        .map_err(admin_diagnostic)?;
    progress.done("ok");
    Ok(client)
}

/// Upload the code archive, serialize with its location, and register everything.
/// Images must have been taken care of before (see [`images::ensure_images`]).
pub fn publish(
    rt: &tokio::runtime::Runtime,
    client: &AdminClient,
    loaded: &Loaded,
    opts: &PlanOptions,
    settings: &crate::config::Settings,
    activate_all: bool,
    skip_errors: bool,
    progress: &Progress,
) -> Result<Published, Diagnostic> {
    let location = match &loaded.archive {
        Some((archive, bytes)) => {
            progress.phase("Uploading code");
            crate::process::test_pause_point("uploading");
            let url = rt.block_on(upload::upload_archive(
                client,
                &settings.project,
                &settings.domain,
                archive,
                bytes.clone(),
            ))?;
            progress.done(&format!(
                "{} files, {} → {url}",
                archive.file_count,
                human_bytes(archive.compressed_size)
            ));
            Some(url)
        }
        None => None,
    };
    progress.phase("Serializing");
    crate::process::test_pause_point("serializing");
    let (entities, version) = serialize_for_registration(loaded, opts, location.as_deref())?;
    progress.done(&format!(
        "{} specs{}, version {version}",
        entities.len(),
        processes_note(loaded)
    ));
    let registered = rt.block_on(register_entities(
        client,
        &entities,
        activate_all,
        skip_errors,
        progress,
    ))?;
    Ok(Published {
        entities,
        version,
        registered,
    })
}

/// " in N processes" when flytekit's serialization was shared out among worker processes.
pub fn processes_note(loaded: &Loaded) -> String {
    match loaded.session.serialize_processes() {
        n if n > 1 => format!(" in {n} processes"),
        _ => String::new(),
    }
}

/// Errors that say the backend is unreachable, which --skip-errors must not skip.
fn is_connection_error(err: &AdminError) -> bool {
    matches!(
        err,
        AdminError::Unreachable { .. } | AdminError::ConnectionLost { .. }
    )
}

/// Turn an admin error into a user-facing diagnostic.
pub fn admin_diagnostic(err: AdminError) -> Diagnostic {
    let hint = err.hint();
    let mut d = match &err {
        AdminError::DifferentStructure { kind, id, message } => Diagnostic::new(format!(
            "{kind} {id} is already registered with different content"
        ))
        .detail(message.clone()),
        _ => Diagnostic::new(err.to_string()),
    };
    if let Some(h) = hint {
        d = d.hint(h);
    }
    d
}

/// Where a version-less package's archive goes (flytekit's placeholder for the fast-execute args).
pub const PACKAGE_PLACEHOLDER: Option<&str> = None;

#[cfg(test)]
mod tests {
    use super::*;

    fn wf(name: &str, lp_refs: &[&str]) -> PlannedEntity {
        let nodes = lp_refs
            .iter()
            .map(|r| core::Node {
                id: format!("n-{r}"),
                target: Some(core::node::Target::WorkflowNode(core::WorkflowNode {
                    reference: Some(core::workflow_node::Reference::LaunchplanRef(
                        core::Identifier {
                            resource_type: core::ResourceType::LaunchPlan as i32,
                            name: r.to_string(),
                            ..Default::default()
                        },
                    )),
                })),
                ..Default::default()
            })
            .collect();
        let id = core::Identifier {
            resource_type: core::ResourceType::Workflow as i32,
            name: name.into(),
            ..Default::default()
        };
        PlannedEntity {
            spec: Spec::Workflow(admin::WorkflowSpec {
                template: Some(core::WorkflowTemplate {
                    id: Some(id),
                    nodes,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            pb: vec![],
            auto_activate: false,
        }
    }

    fn lp(name: &str, wf: &str) -> PlannedEntity {
        PlannedEntity {
            spec: Spec::LaunchPlan(admin::LaunchPlan {
                id: Some(core::Identifier {
                    resource_type: core::ResourceType::LaunchPlan as i32,
                    name: name.into(),
                    ..Default::default()
                }),
                spec: Some(admin::LaunchPlanSpec {
                    workflow_id: Some(core::Identifier {
                        resource_type: core::ResourceType::Workflow as i32,
                        name: wf.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            pb: vec![],
            auto_activate: false,
        }
    }

    #[test]
    fn launch_plans_follow_their_workflows_and_referencing_workflows_follow_them() {
        // outer calls launch plan `inner_lp` of workflow `inner`.
        let es = vec![
            wf("outer", &["inner_lp"]),
            lp("outer", "outer"),
            wf("inner", &[]),
            lp("inner_lp", "inner"),
        ];
        let layers = dependency_layers(&es);
        let pos = |i: usize| layers.iter().position(|l| l.contains(&i)).unwrap();
        assert!(pos(2) < pos(3), "inner before its LP");
        assert!(pos(3) < pos(0), "inner_lp before outer");
        assert!(pos(0) < pos(1), "outer before its LP");
    }

    #[test]
    fn version_changes_with_content_only() {
        let a = derive_version(Some(&[1; 16]), &[], &[]);
        assert_eq!(a, derive_version(Some(&[1; 16]), &[], &[]));
        assert_ne!(a, derive_version(Some(&[2; 16]), &[], &[]));
        assert_eq!(a.len(), 22);
    }
}
