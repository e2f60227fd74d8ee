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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn fetch(path: &str) -> (StatusCode, String, String, Vec<u8>) {
        let res = router()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let header = |name| {
            res.headers()
                .get(name)
                .map(|v: &axum::http::HeaderValue| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        let (content_type, csp) = (
            header(header::CONTENT_TYPE),
            header(header::CONTENT_SECURITY_POLICY),
        );
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, content_type, csp, body)
    }

    #[tokio::test]
    async fn every_console_path_is_the_app_and_its_files_are_built_in() {
        for path in [
            "/console",
            "/console/",
            "/console/projects/flytesnacks/domains/development/executions/abc",
        ] {
            let (status, content_type, csp, body) = fetch(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(content_type.starts_with("text/html"), "{path}");
            assert!(csp.contains("default-src 'self'"), "{path}");
            assert_eq!(body, INDEX);
        }
        // Every file the page and the modules load is served, as JavaScript or CSS.
        let index = String::from_utf8(INDEX.to_vec()).unwrap();
        let mut wanted: Vec<String> = index
            .split('"')
            .filter_map(|s| s.strip_prefix("/console/assets/"))
            .map(str::to_string)
            .collect();
        for (name, _, bytes) in ASSETS.iter().filter(|(n, _, _)| n.ends_with(".js")) {
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let file = line.split('\'').nth(1).unwrap().trim_start_matches("./");
                wanted.push(file.to_string());
                assert!(
                    !file.contains("//"),
                    "{name} imports from elsewhere: {line}"
                );
            }
        }
        for file in wanted {
            let (status, content_type, _, _) = fetch(&format!("/console/assets/{file}")).await;
            assert_eq!(status, StatusCode::OK, "{file}");
            assert!(
                content_type.starts_with("text/javascript") || content_type.starts_with("text/css"),
                "{file}: {content_type}"
            );
        }
        let (status, _, _, _) = fetch("/console/assets/nothing.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
