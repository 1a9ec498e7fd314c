//! The browser UI: plain HTML, CSS and JavaScript modules from `services/gateway/ui/`, embedded
//! at build time (`build.rs` lists every file) and served here, built on `/api/v1` alone.
//!
//! - `/` and the single-page app's own paths ([`SPA_PATHS`], `/go`) answer the shell
//!   (`ui/index.html`), which loads `/ui/<version>/…`. The version is a hash of every embedded
//!   file, so an asset URL never changes meaning: assets are cached as `immutable`, the shell is
//!   revalidated with its ETag.
//! - Every text asset is gzip-compressed once, at first use, and sent compressed to clients that
//!   accept it.
//! - Every UI answer carries a Content-Security-Policy with no inline script or style, framing
//!   limited to the gateway's own pages (the session view frames `/session/<id>/`).
//!
//! Nothing here reaches a service: the pages call `/api/v1` from the browser.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::{Digest as _, Sha256};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));
}

/// The policy every UI answer carries. No inline script or style, no other host; the session
/// view frames the proxied workspace (same origin), and only the gateway's own pages may frame
/// the UI.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'; \
     object-src 'none'";

/// The single-page app's own top-level paths: each answers the shell (so a deep link or a
/// reload works) and the app's router draws the page. `/session/` is the proxy's, not the app's.
pub const SPA_PATHS: &[&str] = &[
    "/login",
    "/go",
    "/workspaces",
    "/launch",
    "/connect",
    "/profile",
    "/admin",
];

/// Where the shell sends the version placeholder.
const VERSION_MARK: &str = "{{VERSION}}";

/// One embedded file, ready to serve.
#[derive(Debug, Clone)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: Bytes,
    /// The gzip form, when it is smaller.
    pub gzip: Option<Bytes>,
    pub etag: String,
}

impl Asset {
    fn new(path: &'static str, body: Bytes) -> Self {
        let content_type = content_type(path);
        let gzip = if compressible(content_type) {
            gzip(&body).filter(|g| g.len() < body.len())
        } else {
            None
        };
        let etag = format!("\"{}\"", &hex(&Sha256::digest(&body))[..20]);
        Self {
            path,
            content_type,
            body,
            gzip,
            etag,
        }
    }

    /// The bytes a client that accepts gzip receives.
    pub fn transfer_size(&self) -> usize {
        self.gzip.as_ref().map_or(self.body.len(), Bytes::len)
    }
}

/// Every embedded file and the shell.
pub struct Ui {
    /// By path under `ui/` (`js/app.js`).
    pub assets: HashMap<&'static str, Asset>,
    /// The shell with the version filled in.
    pub shell: Asset,
    /// The hash of every embedded file: the `/ui/<version>/` prefix.
    pub version: String,
}

/// Built once, on first use.
pub static UI: LazyLock<Ui> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for (path, bytes) in embedded::FILES {
        hash.update(path.as_bytes());
        hash.update([0]);
        hash.update(bytes);
    }
    let version = hex(&hash.finalize())[..12].to_owned();
    let assets: HashMap<_, _> = embedded::FILES
        .iter()
        .map(|(path, bytes)| (*path, Asset::new(path, Bytes::from_static(bytes))))
        .collect();
    let shell_text = embedded::FILES
        .iter()
        .find(|(p, _)| *p == "index.html")
        .map(|(_, b)| String::from_utf8_lossy(b).replace(VERSION_MARK, &version))
        .unwrap_or_else(|| "<!doctype html><title>Atrium</title><p>The UI is missing.".into());
    let shell = Asset::new("index.html", Bytes::from(shell_text));
    Ui {
        assets,
        shell,
        version,
    }
});

/// The UI's routes; they need no state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new()
        .route("/", get(shell))
        .route("/ui/{version}/{*path}", get(asset))
        .route("/favicon.ico", get(favicon));
    for path in SPA_PATHS {
        router = router
            .route(path, get(shell))
            .route(&format!("{path}/{{*rest}}"), get(shell));
    }
    router
}

async fn shell(headers: HeaderMap) -> Response {
    serve(&UI.shell, &headers, "no-cache")
}

async fn asset(Path((version, path)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some(asset) = UI.assets.get(path.as_str()) else {
        return not_found();
    };
    // The current version's files never change under their URL; an old page asking for an old
    // version gets today's file, revalidated every time.
    let cache = if version == UI.version {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    serve(asset, &headers, cache)
}

async fn favicon(headers: HeaderMap) -> Response {
    match UI.assets.get("img/favicon.svg") {
        Some(asset) => serve(asset, &headers, "public, max-age=86400"),
        None => not_found(),
    }
}

fn not_found() -> Response {
    let mut response = (StatusCode::NOT_FOUND, "not found").into_response();
    security_headers(response.headers_mut());
    response
}

/// An asset with its caching, compression and security headers; 304 when the client has it.
fn serve(asset: &Asset, request: &HeaderMap, cache: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    security_headers(&mut headers);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    let body = match &asset.gzip {
        Some(gz) if accepts_gzip(request) => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            gz.clone()
        }
        _ => asset.body.clone(),
    };
    (StatusCode::OK, headers, Body::from(body)).into_response()
}

/// The headers every UI answer carries.
pub fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// The content type of a path, by its extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") | Some("md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.starts_with("image/svg")
}

fn gzip(bytes: &[u8]) -> Option<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_chosen_by_accept_encoding() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, br"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0, br"),
        );
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        assert!(!accepts_gzip(&h));
    }

    #[test]
    fn the_shell_names_the_current_version() {
        assert!(!UI.shell.body.is_empty());
        let text = String::from_utf8_lossy(&UI.shell.body);
        assert!(!text.contains(VERSION_MARK));
        assert!(text.contains(&format!("/ui/{}/js/app.js", UI.version)));
    }
}
