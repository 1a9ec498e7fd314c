//! Each page's first load in a fresh browser (empty cache): every request it made, from Resource
//! Timing (`performance.getEntriesByType`, the session frame's too), with the bytes transferred
//! (compressed, headers included) and the host it went to. Shared by the test that holds the UI
//! to its budget and by the benchmark that prints the figures.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::driver::Chrome;
use crate::flows::STEP;

/// A page's first load may transfer at most this (docs/ui.md: "under 100 KB compressed").
pub const BUDGET_BYTES: u64 = 100_000;

/// A page to load: its path, the element that says it is drawn, and whether it needs a login.
#[derive(Debug, Clone)]
pub struct Page {
    pub name: &'static str,
    pub path: String,
    pub ready: &'static str,
    pub signed_in: bool,
}

/// One request of a load.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    pub kind: String,
    pub transfer: u64,
}

/// What a page's first load fetched.
#[derive(Debug)]
pub struct Load {
    pub requests: Vec<Request>,
}

impl Load {
    pub fn bytes(&self) -> u64 {
        self.requests.iter().map(|r| r.transfer).sum()
    }

    /// How many requests of each kind (navigation, script, link, fetch, img…), e.g.
    /// `fetch 5, script 12`.
    pub fn kinds(&self) -> String {
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for r in &self.requests {
            *counts.entry(r.kind.as_str()).or_default() += 1;
        }
        counts
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Requests that went anywhere but `origin` (the gateway's `http://host:port`).
    pub fn foreign(&self, origin: &str) -> Vec<&Request> {
        self.requests
            .iter()
            .filter(|r| {
                r.url
                    .strip_prefix(origin)
                    .is_none_or(|rest| !(rest.is_empty() || rest.starts_with('/')))
            })
            .collect()
    }
}

/// Loads `page` in a new browser (`login` first, through the API from `/healthz`, when the page
/// needs it), waits until `page.ready` shows and the network is quiet, and lists the requests.
pub async fn first_load(
    programs: &(PathBuf, PathBuf),
    base: &str,
    page: &Page,
    login: (&str, &str),
) -> Load {
    let chrome = Chrome::start(programs, base).await;
    if page.signed_in {
        chrome.api_login(login.0, login.1).await;
    }
    chrome.goto(&page.path).await;
    chrome.wait_for(page.ready, STEP).await;
    // Quiet: no new entry for half a second (lazy modules, API calls, the session frame).
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let count = entries(&chrome).await.len();
        if count == last {
            break;
        }
        last = count;
    }
    let requests = entries(&chrome)
        .await
        .into_iter()
        .map(|e| Request {
            url: e["name"].as_str().unwrap_or_default().to_owned(),
            kind: e["kind"].as_str().unwrap_or_default().to_owned(),
            transfer: e["transfer"].as_u64().unwrap_or(0),
        })
        .collect();
    chrome.close().await;
    Load { requests }
}

async fn entries(chrome: &Chrome) -> Vec<Value> {
    chrome
        .js(ENTRIES, vec![])
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

const ENTRIES: &str = r#"
const out = [];
const collect = (win) => {
  let p = null;
  try { p = win.performance; } catch (e) { return; }
  for (const e of p.getEntriesByType('navigation'))
    out.push({ name: e.name, kind: 'navigation', transfer: e.transferSize });
  for (const e of p.getEntriesByType('resource'))
    out.push({ name: e.name, kind: e.initiatorType, transfer: e.transferSize });
};
collect(window);
for (const f of document.querySelectorAll('iframe')) collect(f.contentWindow);
return out;
"#;

/// The user's pages that need no session.
pub fn user_pages() -> Vec<Page> {
    vec![
        Page {
            name: "login",
            path: "/login".into(),
            ready: "#login-username",
            signed_in: false,
        },
        Page {
            name: "dashboard",
            path: "/".into(),
            ready: "#workspace-list",
            signed_in: true,
        },
        Page {
            name: "profile",
            path: "/profile".into(),
            ready: "#settings-form",
            signed_in: true,
        },
    ]
}

/// The admin pages (the administrator signs in): home, users, and a group with its settings
/// editor.
pub fn admin_pages(group_id: &str) -> Vec<Page> {
    vec![
        Page {
            name: "admin",
            path: "/admin".into(),
            ready: "#admin-sections",
            signed_in: true,
        },
        Page {
            name: "users",
            path: "/admin/users".into(),
            ready: "#users-table",
            signed_in: true,
        },
        Page {
            name: "group",
            path: format!("/admin/groups/{group_id}"),
            ready: "#settings-editor",
            signed_in: true,
        },
    ]
}

/// `/launch/<workspace>`: the launch page, then the session view with the workspace's page in
/// its frame.
pub fn launch_page(workspace: &str) -> Page {
    Page {
        name: "launch",
        path: format!("/launch/{workspace}"),
        ready: "#session-frame",
        signed_in: true,
    }
}
