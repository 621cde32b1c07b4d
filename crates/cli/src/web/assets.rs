//! The page's files, built by Vite from `crates/cli/web` into `web/dist` (committed, so a
//! build of this crate needs no Node) and compiled into the binary: `conclave web` needs
//! nothing at run time but itself. The names are fixed (see `web/vite.config.ts`), so the
//! browser revalidates them (`no-cache`) rather than keeping a stale copy.

use super::Web;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

/// `index.html`.
pub const INDEX: &str = include_str!("../../web/dist/index.html");
/// The script (all modules in one file).
pub const SCRIPT: &str = include_str!("../../web/dist/assets/app.js");
/// The stylesheet.
pub const STYLE: &str = include_str!("../../web/dist/assets/style.css");
/// The icon.
pub const ICON: &str = include_str!("../../web/dist/favicon.svg");

fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// The routes of the page's files.
pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route(
            "/",
            get(|| async { file("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { file("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { file("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/favicon.svg",
            get(|| async { file("image/svg+xml", ICON) }),
        )
}
