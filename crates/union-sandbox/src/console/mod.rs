//! The web console at `/console`, on flyteconsole's URL scheme
//! (`/console/projects/P/domains/D/executions/NAME`, ...), so the links `FlyteRemote` and our
//! commands print open the right page.
//!
//! It is a small JavaScript application with no build step (ES modules, no framework) that reads
//! and launches through FlyteAdmin's HTTP API ([`crate::api`]). Its files are built into the
//! binary (`assets/`), with the one library it uses (dagre, for the graph's layout) vendored, so
//! it works offline and nothing is fetched from a CDN. Every page path serves the same
//! `index.html`; the application routes on the path.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// The console's files: (path under `/console/assets/`, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.js", JS, include_bytes!("assets/app.js")),
    ("api.js", JS, include_bytes!("assets/api.js")),
    ("values.js", JS, include_bytes!("assets/values.js")),
    ("graph.js", JS, include_bytes!("assets/graph.js")),
    ("execution.js", JS, include_bytes!("assets/execution.js")),
    ("entities.js", JS, include_bytes!("assets/entities.js")),
    ("launch.js", JS, include_bytes!("assets/launch.js")),
    ("dom.js", JS, include_bytes!("assets/dom.js")),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/style.css"),
    ),
    (
        "vendor/dagre.min.js",
        JS,
        include_bytes!("assets/vendor/dagre.min.js"),
    ),
    (
        "vendor/dagre.LICENSE",
        TEXT,
        include_bytes!("assets/vendor/dagre.LICENSE"),
    ),
];

const INDEX: &[u8] = include_bytes!("assets/index.html");
const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Scripts, styles and data from this origin only: the console needs nothing else, and a value
/// shown on a page can never load or run anything.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The console's routes; merge into the sandbox's router.
pub fn router() -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { Redirect::temporary("/console") }))
        // Browsers ask for it on every page; the console has none.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/assets/{*file}", get(asset))
        .route("/console/{*page}", get(index))
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        // Revalidated on each load, so a new sandbox binary's console is never mixed with an
        // old one's files from the browser's cache.
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such console file\n").into_response(),
    }
}
