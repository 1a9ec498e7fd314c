//! The browser UI as served: every embedded asset with its content type, the security headers,
//! caching and compression, the first load's size, the shell for deep links and `/go`, and no
//! asset pointing at another host. The UI's router needs no services, so it is driven directly.

use std::io::Read as _;

use atrium_gateway::ui::{self, CONTENT_SECURITY_POLICY, SPA_PATHS, UI};
use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use tower::ServiceExt as _;

fn app() -> Router {
    ui::router()
}

async fn get(path: &str, headers: &[(&str, &str)]) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let mut request = Request::get(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, headers, body.to_vec())
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn assert_secure(path: &str, headers: &http::HeaderMap) {
    let csp = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap_or_else(|| panic!("{path}: no CSP"))
        .to_str()
        .expect("ascii");
    assert_eq!(csp, CONTENT_SECURITY_POLICY, "{path}");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
    assert!(headers.contains_key(header::REFERRER_POLICY), "{path}");
}

#[test]
fn the_policy_allows_no_inline_script_or_style_and_no_other_host() {
    let directives: Vec<(&str, Vec<&str>)> = CONTENT_SECURITY_POLICY
        .split(';')
        .map(|d| {
            let mut words = d.split_whitespace();
            (words.next().unwrap_or_default(), words.collect())
        })
        .collect();
    let get = |name: &str| {
        directives
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(get("script-src"), vec!["'self'"]);
    assert_eq!(get("style-src"), vec!["'self'"]);
    assert_eq!(get("frame-src"), vec!["'self'"]);
    assert_eq!(get("frame-ancestors"), vec!["'self'"]);
    assert_eq!(get("default-src"), vec!["'self'"]);
    assert_eq!(get("object-src"), vec!["'none'"]);
    for (name, values) in &directives {
        for v in values {
            assert!(
                !v.contains("unsafe") && !v.contains("://") && *v != "*" && *v != "https:",
                "{name} allows {v}"
            );
        }
    }
}

#[tokio::test]
async fn every_asset_is_served_with_its_type_and_the_security_headers() {
    assert!(UI.assets.len() >= 10, "the UI is embedded");
    for asset in UI.assets.values() {
        let path = format!("/ui/{}/{}", UI.version, asset.path);
        let (status, headers, body) = get(&path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let expected = match asset.path.rsplit_once('.').map(|(_, e)| e) {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("html") => "text/html; charset=utf-8",
            Some("svg") => "image/svg+xml",
            Some("txt") => "text/plain; charset=utf-8",
            other => panic!("{path}: an asset of unexpected kind {other:?}"),
        };
        assert_eq!(headers[header::CONTENT_TYPE], expected, "{path}");
        assert_eq!(
            headers[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable",
            "{path}"
        );
        assert!(headers.contains_key(header::ETAG), "{path}");
        assert_secure(&path, &headers);
        assert_eq!(
            body,
            asset.body.as_ref(),
            "{path}: uncompressed without gzip"
        );
    }
}

#[tokio::test]
async fn gzip_is_sent_to_who_accepts_it_and_etags_revalidate() {
    let path = format!("/ui/{}/js/app.js", UI.version);
    let (status, headers, body) = get(&path, &[("accept-encoding", "gzip, deflate, br")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(headers[header::VARY], "accept-encoding");
    let plain = &UI.assets["js/app.js"].body;
    assert_eq!(gunzip(&body), plain.as_ref());
    assert!(body.len() < plain.len());

    let etag = headers[header::ETAG].to_str().expect("ascii").to_owned();
    let (status, _, body) = get(&path, &[("if-none-match", &etag)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());

    // An old version's URL still answers, but is revalidated rather than cached for good.
    let (status, headers, _) = get("/ui/0123456789ab/js/app.js", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");

    let (status, headers, _) = get(&format!("/ui/{}/js/nope.js", UI.version), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_secure("missing asset", &headers);
    let (status, _, _) = get(&format!("/ui/{}/../Cargo.toml", UI.version), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The admin pages' modules and stylesheet, which `js/admin/index.js` loads with `import()` the
/// first time an admin page is drawn: not part of anyone's first load.
fn lazy_admin(path: &str) -> bool {
    (path.starts_with("js/admin/") && path != "js/admin/index.js") || path == "css/admin.css"
}

/// Everything a first visit may fetch, compressed: the shell and every script and stylesheet
/// (the modules are loaded at start; the QR encoder only on enrolment, counted anyway), except
/// the admin pages' lazily loaded modules (see the next test).
#[test]
fn a_first_load_is_under_100_kb_transferred() {
    let shell = UI.shell.transfer_size();
    let assets: usize = UI
        .assets
        .values()
        .filter(|a| a.path != "index.html" && !a.path.ends_with(".txt") && !lazy_admin(a.path))
        .map(|a| a.transfer_size())
        .sum();
    let total = shell + assets;
    println!("first load: shell {shell} B + assets {assets} B = {total} B (gzip)");
    assert!(total < 100 * 1024, "{total} bytes");
}

#[tokio::test]
async fn the_shell_answers_slash_go_and_every_deep_link() {
    let mut paths = vec!["/".to_owned(), "/go?kasm_id=abc".to_owned()];
    for p in SPA_PATHS {
        paths.push((*p).to_owned());
        paths.push(format!("{p}/some/deep/link"));
    }
    paths.push("/connect/0b1c2d3e-aaaa-bbbb-cccc-123456789abc".into());
    paths.push("/admin/users/42".into());
    for path in paths {
        let (status, headers, body) = get(&path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8",
            "{path}"
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{path}");
        assert_secure(&path, &headers);
        let text = String::from_utf8(body).expect("utf-8");
        assert!(
            text.contains(&format!(
                "<script type=\"module\" src=\"/ui/{}/js/app.js\">",
                UI.version
            )),
            "{path}"
        );
    }
    // Not the app's: the proxy's and the API's paths are left alone.
    let (status, _, _) = get("/session/abc/", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// No asset makes the browser reach another host: no http(s):// URL outside comments, except
/// XML namespace names (which are never fetched); no protocol-relative `//host` references in
/// HTML or CSS either.
#[test]
fn no_asset_references_another_host() {
    const NAMESPACES: &[&str] = &["http://www.w3.org/2000/svg", "http://www.w3.org/1999/xhtml"];
    for asset in UI.assets.values() {
        if asset.path.ends_with(".txt") {
            continue; // licence texts
        }
        let text = String::from_utf8_lossy(&asset.body);
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") || code.starts_with('*') || code.starts_with("/*") {
                continue;
            }
            let mut rest = line;
            while let Some(i) = rest.find("http") {
                let tail = &rest[i..];
                if tail.starts_with("http://") || tail.starts_with("https://") {
                    assert!(
                        NAMESPACES.iter().any(|ns| tail.starts_with(ns)),
                        "{}:{}: {}",
                        asset.path,
                        n + 1,
                        line.trim()
                    );
                }
                rest = &rest[i + 4..];
            }
            if asset.path.ends_with(".html") || asset.path.ends_with(".css") {
                for marker in ["src=\"//", "href=\"//", "url(//", "url(\"//", "@import"] {
                    assert!(
                        !line.contains(marker),
                        "{}:{}: {}",
                        asset.path,
                        n + 1,
                        line.trim()
                    );
                }
            }
        }
    }
}

/// Scripts and markup never rely on what the CSP forbids: inline scripts, inline event
/// handlers, style attributes, eval.
#[test]
fn no_asset_needs_what_the_policy_forbids() {
    let shell = String::from_utf8_lossy(&UI.shell.body);
    for (i, part) in shell.split("<script").enumerate().skip(1) {
        assert!(
            part.trim_start().starts_with("type=\"module\" src="),
            "inline script #{i} in the shell"
        );
    }
    for asset in UI.assets.values() {
        let text = String::from_utf8_lossy(&asset.body);
        if asset.path.ends_with(".html") {
            for bad in [
                " style=",
                " onclick=",
                " onload=",
                " onerror=",
                " onsubmit=",
            ] {
                assert!(!text.contains(bad), "{}: {bad}", asset.path);
            }
        }
        if asset.path.starts_with("js/") {
            for bad in [
                "eval(",
                "new Function(",
                ".innerHTML",
                "setAttribute('style'",
            ] {
                assert!(!text.contains(bad), "{}: {bad}", asset.path);
            }
        }
    }
}

/// The admin pages: js/admin/index.js (part of the first load) registers them and fetches each
/// page's module with `import()` only when one of its pages is drawn. No first-load module
/// imports an admin page statically; every module index.js names is served as JavaScript,
/// gzip-compressed; an admin's first admin page (the first load plus every admin module and
/// the admin stylesheet) stays under 100 KB transferred; and no admin file names another host.
#[tokio::test]
async fn admin_pages_are_served_lazily_within_budget_and_name_no_other_host() {
    let index = String::from_utf8_lossy(&UI.assets["js/admin/index.js"].body).into_owned();
    let mut lazy: Vec<String> = index
        .match_indices("import('./")
        .map(|(i, m)| {
            let rest = &index[i + m.len()..];
            format!(
                "js/admin/{}",
                &rest[..rest.find('\'').expect("closing quote")]
            )
        })
        .collect();
    lazy.sort();
    lazy.dedup();
    for page in [
        "users",
        "groups",
        "workspaces",
        "zones",
        "agents",
        "sessions",
        "explain",
        "audit",
        "reports",
    ] {
        assert!(
            lazy.contains(&format!("js/admin/{page}.js")),
            "index.js does not load {page}.js lazily"
        );
    }

    // Nothing in the first load imports an admin page statically.
    for asset in UI.assets.values() {
        if !asset.path.starts_with("js/") || lazy_admin(asset.path) {
            continue;
        }
        let text = String::from_utf8_lossy(&asset.body);
        for line in text.lines() {
            let code = line.trim_start();
            if code.starts_with("import ") || code.starts_with("export ") {
                for module in &lazy {
                    let name = module.trim_start_matches("js/admin/");
                    assert!(
                        !(code.contains(" from ") && code.contains(&format!("/{name}'"))),
                        "{} imports {module} statically: {line}",
                        asset.path
                    );
                }
            }
        }
    }

    let admin: Vec<_> = UI.assets.values().filter(|a| lazy_admin(a.path)).collect();
    assert!(
        admin.iter().any(|a| a.path == "css/admin.css"),
        "the admin stylesheet is embedded"
    );
    for module in &lazy {
        let asset = UI
            .assets
            .get(module.as_str())
            .unwrap_or_else(|| panic!("{module} is not embedded"));
        let path = format!("/ui/{}/{}", UI.version, asset.path);
        let (status, headers, body) = get(&path, &[("accept-encoding", "gzip")]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8",
            "{path}"
        );
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip", "{path}");
        assert_secure(&path, &headers);
        assert_eq!(gunzip(&body), asset.body.as_ref(), "{path}");
    }

    let first: usize = UI.shell.transfer_size()
        + UI.assets
            .values()
            .filter(|a| a.path != "index.html" && !a.path.ends_with(".txt") && !lazy_admin(a.path))
            .map(|a| a.transfer_size())
            .sum::<usize>();
    let extra: usize = admin.iter().map(|a| a.transfer_size()).sum();
    println!(
        "admin: {} lazily loaded files, {extra} B (gzip); with the first load {} B",
        admin.len(),
        first + extra
    );
    assert!(first + extra < 100 * 1024, "{} bytes", first + extra);

    for asset in &admin {
        let text = String::from_utf8_lossy(&asset.body);
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") || code.starts_with('*') || code.starts_with("/*") {
                continue;
            }
            assert!(
                !code.contains("://") || code.contains("http://www.w3.org/"),
                "{}:{}: {}",
                asset.path,
                n + 1,
                line.trim()
            );
            assert!(
                !code.contains("fetch(") && !code.contains("XMLHttpRequest"),
                "{}:{}: calls the network itself instead of through api.js",
                asset.path,
                n + 1
            );
        }
    }
}
