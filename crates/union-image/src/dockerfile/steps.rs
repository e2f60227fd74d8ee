//! The Dockerfile, part by part: each function writes one part (and adds the files that part
//! needs to the build context), called in the order the parts appear in the Dockerfile.

use std::fmt::Write as _;
use std::path::Path;

use super::inputs::{
    copy_source, pyproject_dependencies, read, resolve, source_files, Requirements,
};
use super::{
    BuildSettings, PlanError, SecretMount, SecretSource, NETRC_SECRET, NETRC_TARGET,
    POETRY_VERSION, TOOLS, UV_VERSION, VENV,
};
use crate::context::BuildContext;
use crate::spec::ImageSpec;
use crate::tag::TagContext;

/// uv's cache, shared by every build on the engine.
const UV_CACHE_MOUNT: &str = "--mount=type=cache,target=/root/.cache/uv,id=union-uv";
/// apt's caches; `sharing=locked` because apt cannot share them between concurrent steps.
const APT_MOUNTS: &str = "--mount=type=cache,target=/var/cache/apt,id=union-apt-cache,sharing=locked \\\n    \
                          --mount=type=cache,target=/var/lib/apt/lists,id=union-apt-lists,sharing=locked";

/// The tools stage's environment, mounted where the install steps run it.
fn tools_mount() -> String {
    format!("--mount=type=bind,from=union-tools,source={TOOLS},target={TOOLS}")
}

/// Index flags shared by `uv pip install` and `uv sync`, and the netrc with their credentials.
///
/// Credentials written into an index URL would end up in the image's history (RUN lines are kept
/// there): the URL goes in without them, and they reach uv through a netrc secret mount instead.
pub(super) struct IndexAccess {
    /// ` --index-url <url>` / ` --extra-index-url <url>` flags, URLs without credentials.
    args: String,
    /// netrc lines for the URLs that carried credentials.
    netrc: String,
}

impl IndexAccess {
    pub(super) fn of(spec: &ImageSpec) -> Self {
        let mut access = IndexAccess {
            args: String::new(),
            netrc: String::new(),
        };
        if let Some(index) = spec.pip_index.as_deref().filter(|s| !s.is_empty()) {
            access.add("--index-url", index);
        }
        for extra in spec.pip_extra_index_url.iter().flatten() {
            access.add("--extra-index-url", extra);
        }
        access
    }

    fn add(&mut self, flag: &str, url: &str) {
        let _ = write!(
            self.args,
            " {flag} {}",
            sh_quote(&union_diagnostics::redact::strip_url_credentials(url))
        );
        if let (Some((login, password)), Some(host)) = (
            union_diagnostics::redact::url_credentials(url),
            url_host(url),
        ) {
            let _ = writeln!(
                self.netrc,
                "machine {host} login {} password {}",
                netrc_word(&login),
                netrc_word(&password)
            );
        }
    }

    fn has_netrc(&self) -> bool {
        !self.netrc.is_empty()
    }
}

/// The install step's secrets: the spec's `pip_secret_mounts`, then the index netrc if any.
pub(super) fn secret_mounts(
    spec: &ImageSpec,
    ctx: &TagContext,
    index: &IndexAccess,
) -> Vec<SecretMount> {
    let mut secrets: Vec<SecretMount> = spec
        .pip_secret_mounts
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, (src, target))| SecretMount {
            id: format!("secret_{i}"),
            source: SecretSource::File(resolve(&ctx.base_dir, src)),
            target: target.clone(),
        })
        .collect();
    if index.has_netrc() {
        secrets.push(SecretMount {
            id: NETRC_SECRET.into(),
            source: SecretSource::Text(index.netrc.clone()),
            target: NETRC_TARGET.into(),
        });
    }
    secrets
}

/// How the final stage installs the Python dependencies.
pub(super) struct Install {
    /// The install command, run after uv's environment variables.
    command: String,
    /// A locked project in `.union/project`; otherwise a list in `.union/requirements_uv.txt`.
    project: bool,
    /// poetry installs the project (`poetry.lock`), so the tools stage needs it.
    poetry: bool,
}

/// The install command, with the files it reads added to the context.
pub(super) fn install(
    spec: &ImageSpec,
    requirements: &Requirements,
    settings: &BuildSettings,
    index: &IndexAccess,
    context: &mut BuildContext,
) -> Result<Install, PlanError> {
    let extra_args = spec
        .pip_extra_args
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|s| format!(" {}", s.trim()))
        .unwrap_or_default();
    match requirements {
        Requirements::UvLock { .. } | Requirements::PoetryLock { .. } => {
            install_locked(spec, requirements, index, &extra_args, context)
        }
        _ => install_list(spec, requirements, settings, index, &extra_args, context),
    }
}

/// A lock file: the project files go to `.union/project` and uv (or poetry) syncs from them.
fn install_locked(
    spec: &ImageSpec,
    requirements: &Requirements,
    index: &IndexAccess,
    extra_args: &str,
    context: &mut BuildContext,
) -> Result<Install, PlanError> {
    for (name, path) in requirements.files() {
        add_file(
            context,
            &spec.name,
            &format!(".union/project/{name}"),
            &path,
        )?;
    }
    let poetry = matches!(requirements, Requirements::PoetryLock { .. });
    let command = if poetry {
        // flytekit: `poetry install <pip_extra_args> --no-root` into the project's venv;
        // here into /opt/venv, the environment VIRTUAL_ENV names.
        format!(
            "cd /tmp/union/project && POETRY_VIRTUALENVS_CREATE=false POETRY_CACHE_DIR=/root/.cache/pypoetry \
             {TOOLS}/bin/poetry install --no-interaction --no-root{extra_args}"
        )
    } else {
        let index_args = &index.args;
        format!(
            "cd /tmp/union/project && UV_PROJECT_ENVIRONMENT={VENV} {TOOLS}/bin/uv sync --locked \
             --no-dev --no-install-project{index_args}{extra_args}"
        )
    };
    Ok(Install {
        command,
        project: true,
        poetry,
    })
}

/// A requirements list (requirements.txt, pyproject.toml dependencies, `packages`), with
/// flytekit added when it lacks it, as flytekit's builder does.
fn install_list(
    spec: &ImageSpec,
    requirements: &Requirements,
    settings: &BuildSettings,
    index: &IndexAccess,
    extra_args: &str,
    context: &mut BuildContext,
) -> Result<Install, PlanError> {
    let image = spec.name.as_str();
    let mut lines: Vec<String> = Vec::new();
    match requirements {
        Requirements::Txt(path) => {
            let text = String::from_utf8_lossy(&read(image, path)?).into_owned();
            lines.extend(text.lines().map(|l| l.trim().to_string()));
        }
        Requirements::Pyproject(path) => lines.extend(pyproject_dependencies(image, path)?),
        _ => {}
    }
    lines.extend(spec.packages.iter().flatten().cloned());
    if !lists_flytekit(&lines) {
        lines.push(flytekit_requirement(&settings.flytekit_version));
    }
    context.add_bytes(".union/requirements_uv.txt", lines.join("\n"), 0o644);
    let index_args = &index.args;
    Ok(Install {
        command: format!(
            "{TOOLS}/bin/uv pip install --python {VENV}/bin/python{index_args}{extra_args} \
             --requirement /tmp/union/requirements_uv.txt"
        ),
        project: false,
        poetry: false,
    })
}

/// Stage 1, `union-base`: the base image, apt packages and the Python environment.
pub(super) fn base_stage(df: &mut String, spec: &ImageSpec, base_image: &str) {
    let image = spec.name.as_str();
    let _ = writeln!(
        df,
        "# Generated by union for ImageSpec '{image}'. Needs BuildKit (RUN --mount) and no frontend\n\
         # image: the engine's built-in Dockerfile frontend is used."
    );
    let _ = writeln!(df, "FROM {base_image} AS union-base");
    let _ = writeln!(df, "USER root");
    let _ = writeln!(df, "WORKDIR /");
    if let Some(pkgs) = spec.apt_packages.as_ref().filter(|p| !p.is_empty()) {
        let words: Vec<String> = pkgs.iter().map(|p| sh_quote(p)).collect();
        let _ = writeln!(
            df,
            "RUN {APT_MOUNTS} \\\n    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
             --no-install-recommends {}",
            words.join(" ")
        );
    }
    let mut py_env = format!("UNION_BASE_IMAGE={}", sh_quote(base_image));
    if let Some(v) = spec.python_version.as_deref().filter(|s| !s.is_empty()) {
        let _ = write!(py_env, " UNION_PYTHON_VERSION={}", sh_quote(v));
    }
    if let Some(exe) = spec.python_exec.as_deref().filter(|s| !s.is_empty()) {
        // flytekit builds the venv from python_exec with --system-site-packages.
        let _ = write!(
            py_env,
            " UNION_PYTHON_EXEC={} UNION_VENV_FLAGS=--system-site-packages",
            sh_quote(exe)
        );
    }
    let _ = writeln!(
        df,
        "RUN --mount=type=bind,source=.union/python.sh,target=/tmp/union/python.sh \\\n    {APT_MOUNTS} \\\n    \
         {py_env} sh /tmp/union/python.sh"
    );
}

/// Stage 2, `union-tools`: build tools, mounted into the install steps and never shipped.
pub(super) fn tools_stage(df: &mut String, install: &Install) {
    let _ = writeln!(df, "\nFROM union-base AS union-tools");
    let tools = if install.poetry {
        format!("uv=={UV_VERSION} poetry=={POETRY_VERSION}")
    } else {
        format!("uv=={UV_VERSION}")
    };
    let _ = writeln!(
        df,
        "RUN --mount=type=cache,target=/root/.cache/pip,id=union-pip \\\n    \
         {VENV}/bin/python -m venv {TOOLS} && {TOOLS}/bin/python -m pip install -q --disable-pip-version-check {tools}"
    );
}

/// Stage 3, the image: its environment, then the dependency install with its mounts.
pub(super) fn install_stage(
    df: &mut String,
    spec: &ImageSpec,
    install: &Install,
    secrets: &[SecretMount],
    index: &IndexAccess,
) {
    let _ = writeln!(df, "\nFROM union-base");
    let _ = writeln!(
        df,
        "ENV VIRTUAL_ENV={VENV} PATH=\"{VENV}/bin:$PATH:{TOOLS}/bin\" FLYTE_SDK_RICH_TRACEBACKS=0 \
         SSL_CERT_DIR=/etc/ssl/certs PYTHONPATH=/root"
    );
    if let Some(env) = spec.env.as_ref().filter(|e| !e.is_empty()) {
        let parts: Vec<String> = env
            .iter()
            .map(|(k, v)| format!("{k}={}", df_quote(v)))
            .collect();
        let _ = writeln!(df, "ENV {}", parts.join(" "));
    }
    let mut mounts = vec![tools_mount(), UV_CACHE_MOUNT.to_string()];
    if install.poetry {
        mounts.push("--mount=type=cache,target=/root/.cache/pypoetry,id=union-poetry".into());
    }
    if install.project {
        mounts.push("--mount=type=bind,source=.union/project,target=/tmp/union/project,rw".into());
    } else {
        mounts.push(
            "--mount=type=bind,source=.union/requirements_uv.txt,target=/tmp/union/requirements_uv.txt"
                .into(),
        );
    }
    for s in secrets {
        mounts.push(format!(
            "--mount=type=secret,id={},target={},required=true",
            s.id, s.target
        ));
    }
    // uv uses the system's CA store (sites re-signing TLS with a local CA need that), never
    // downloads interpreters, and copies out of the cache mount instead of hard-linking.
    let mut uv_env = format!(
        "UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_NATIVE_TLS=1 UV_PYTHON_DOWNLOADS=never UV_PYTHON={VENV}/bin/python"
    );
    if index.has_netrc() {
        let _ = write!(uv_env, " NETRC={NETRC_TARGET}");
    }
    let check = format!(
        "{{ test -x {VENV}/bin/pyflyte-execute && test -x {VENV}/bin/pyflyte-fast-execute || \
         {{ echo \"union: error: flytekit is not installed in the image (no pyflyte-execute in {VENV}/bin); \
         add flytekit to the ImageSpec's requirements\" >&2; exit 1; }}; }}"
    );
    let _ = writeln!(
        df,
        "RUN {} \\\n    {uv_env} {} \\\n    && {check}",
        mounts.join(" \\\n    "),
        install.command
    );
}

pub(super) fn entrypoint(df: &mut String, spec: &ImageSpec) {
    if let Some(entrypoint) = &spec.entrypoint {
        let _ = writeln!(
            df,
            "ENTRYPOINT {}",
            serde_json::to_string(entrypoint).expect("a list of strings serializes")
        );
    }
}

/// The `copy` entries, each at the same relative path under /root.
pub(super) fn copies(
    df: &mut String,
    context: &mut BuildContext,
    spec: &ImageSpec,
    ctx: &TagContext,
) -> Result<(), PlanError> {
    let image = spec.name.as_str();
    for entry in spec.copy.iter().flatten() {
        let trimmed = entry.trim_end_matches('/');
        let rel = trimmed.strip_prefix("./").unwrap_or(trimmed);
        let src = copy_source(spec, ctx, entry)?;
        let in_ctx = format!(".union/copy/{rel}");
        if src.is_dir {
            context
                .add_dir(&in_ctx, &src.path)
                .map_err(|source| PlanError::Io {
                    image: image.to_string(),
                    path: src.path.clone(),
                    source,
                })?;
            let _ = writeln!(
                df,
                "COPY --chown=flytekit {}",
                copy_args(&in_ctx, &format!("/root/{rel}/"))
            );
        } else {
            add_file(context, image, &in_ctx, &src.path)?;
            let parent = Path::new(rel)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dest = if parent.is_empty() {
                "/root/".to_string()
            } else {
                format!("/root/{parent}/")
            };
            let _ = writeln!(df, "COPY --chown=flytekit {}", copy_args(&in_ctx, &dest));
        }
    }
    Ok(())
}

/// The spec's `commands`, with uv at hand as in the install step.
pub(super) fn commands(df: &mut String, spec: &ImageSpec) {
    if let Some(commands) = spec.commands.as_ref().filter(|c| !c.is_empty()) {
        let _ = writeln!(
            df,
            "RUN {} \\\n    {UV_CACHE_MOUNT} \\\n    {}",
            tools_mount(),
            commands.join(" && ")
        );
    }
}

/// The source files `source_copy_mode` selects, after `commands` so a code change reruns only
/// this layer.
pub(super) fn sources(
    df: &mut String,
    context: &mut BuildContext,
    spec: &ImageSpec,
    ctx: &TagContext,
) -> Result<(), PlanError> {
    let listed = source_files(spec, ctx)?;
    for (rel, path) in &listed {
        add_file(context, &spec.name, &format!(".union/src/{rel}"), path)?;
    }
    if !listed.is_empty() {
        let _ = writeln!(df, "COPY --chown=flytekit .union/src /root");
    }
    Ok(())
}

pub(super) fn finish(df: &mut String, spec: &ImageSpec) {
    let _ = writeln!(df, "WORKDIR /root");
    let _ = writeln!(df, "USER flytekit");
    // Last, as flytekit does: the id changes with any field, and nothing else depends on it.
    let _ = writeln!(df, "ENV _F_IMG_ID={}", spec.id());
}

/// Quote a word for `/bin/sh` (unchanged when it needs no quoting).
pub fn sh_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A Dockerfile double-quoted string (ENV values): `\` and `"` escaped, `$VAR` still expanded.
fn df_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', r"\\").replace('"', "\\\""))
}

/// flytekit's check for an already-listed flytekit: the requirement name (`^[\w-]+`) is exactly
/// `flytekit`.
fn lists_flytekit(lines: &[String]) -> bool {
    lines.iter().any(|line| {
        let name: String = line
            .trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        name == "flytekit"
    })
}

/// The `flytekit` requirement flytekit's builder adds: pinned, or bare for a dev version.
fn flytekit_requirement(version: &str) -> String {
    if version.is_empty() || version.contains("dev") {
        "flytekit".to_string()
    } else {
        format!("flytekit=={version}")
    }
}

/// The host (with port) of a URL, as netrc's `machine` names it.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host_port
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host_port, |(h, _)| h);
    (!host.is_empty()).then(|| host.to_string())
}

/// A netrc token: netrc has no quoting in uv's parser, so whitespace cannot be carried.
fn netrc_word(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// COPY's source and destination in JSON form (safe for any file name).
fn copy_args(src: &str, dest: &str) -> String {
    serde_json::to_string(&[src, dest]).expect("strings serialize")
}

fn add_file(ctx: &mut BuildContext, image: &str, at: &str, src: &Path) -> Result<(), PlanError> {
    ctx.add_file(at, src).map_err(|source| PlanError::Io {
        image: image.to_string(),
        path: src.to_path_buf(),
        source,
    })
}
