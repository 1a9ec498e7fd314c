//! Headless Chromium through chromedriver (WebDriver, fantoccini): one chromedriver per browser
//! on a free loopback port, a fresh profile in a temporary directory, and helpers that run
//! JavaScript in the page (fetch with the page's own cookies, resource timing).
//!
//! `ATRIUM_TEST_CHROMIUM` names the chromium program and `ATRIUM_TEST_CHROMEDRIVER` its driver
//! (scripts/test sets both through scripts/lib/browser.sh). Without them a test is skipped,
//! except under `CI`, where it fails.

use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// The chromium and chromedriver programs, or `None` when the test should be skipped.
#[track_caller]
pub fn browser_enabled(test: &str) -> Option<(PathBuf, PathBuf)> {
    match std::env::var("ATRIUM_TEST_CHROMIUM") {
        Ok(path) if !path.is_empty() => {
            let driver = std::env::var("ATRIUM_TEST_CHROMEDRIVER")
                .ok()
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "chromedriver".into());
            Some((PathBuf::from(path), PathBuf::from(driver)))
        }
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI runs the browser tests: set ATRIUM_TEST_CHROMIUM (scripts/test does, through \
                 scripts/lib/browser.sh)"
            );
            eprintln!("{test}: ATRIUM_TEST_CHROMIUM is unset; skipped");
            None
        }
    }
}

/// One headless Chromium, driven over WebDriver. [`Chrome::close`] ends it in order; dropping
/// it kills chromedriver's process group (chromium included).
pub struct Chrome {
    pub client: Client,
    /// The gateway's URL (`http://127.0.0.1:port`); paths given to the helpers are under it.
    pub base: String,
    driver: Child,
    /// chromedriver's URL (`http://127.0.0.1:port`).
    pub driver_url: String,
    /// The profile and chromedriver's log; removed with the browser.
    _dir: tempfile::TempDir,
}

/// Whether this process runs as root (Chromium's sandbox refuses root).
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts chromedriver on a free port and waits until it says it is ready.
async fn start_driver(program: &Path, dir: &Path) -> (Child, u16) {
    let log = dir.join("chromedriver.log");
    for attempt in 1..=3 {
        let port = free_port();
        let mut child = Command::new(program)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that one kill also reaches the browsers it started.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let status_url = format!("http://127.0.0.1:{port}/status");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break; // lost the port to someone else, or failed: retry
            }
            let ready = match reqwest::get(&status_url).await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                return (child, port);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        kill_group(&mut child);
        eprintln!("chromedriver attempt {attempt} on port {port} failed");
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    panic!("chromedriver never became ready:\n{text}");
}

fn kill_group(child: &mut Child) {
    let pgid = child.id();
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Chrome {
    /// A new browser (a profile of its own: no cookies) at `base`'s `/healthz`, 1280×800.
    pub async fn start(programs: &(PathBuf, PathBuf), base: &str) -> Chrome {
        Self::start_sized(programs, base, 1280, 800).await
    }

    pub async fn start_sized(
        (chromium, chromedriver): &(PathBuf, PathBuf),
        base: &str,
        width: u32,
        height: u32,
    ) -> Chrome {
        let dir = tempfile::tempdir().expect("browser dir");
        let (driver, port) = start_driver(chromedriver, dir.path()).await;
        let mut args = vec![
            "--headless=new".to_owned(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-default-apps".into(),
            "--disable-extensions".into(),
            "--disable-sync".into(),
            "--force-device-scale-factor=1".into(),
            "--hide-scrollbars".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", dir.path().join("profile").display()),
        ];
        if is_root() {
            args.push("--no-sandbox".into());
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium, "args": args}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                let log = std::fs::read_to_string(dir.path().join("chromedriver.log"));
                panic!("start chromium: {e}\n{}", log.unwrap_or_default())
            });
        let chrome = Chrome {
            client,
            base: base.trim_end_matches('/').to_owned(),
            driver,
            driver_url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        // A page of the gateway's origin, so scripts can fetch with its cookies.
        chrome.goto("/healthz").await;
        chrome
    }

    /// Ends the WebDriver session (chromium exits), then chromedriver.
    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        kill_group(&mut self.driver);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Navigates to `path` under the gateway and waits for the load.
    pub async fn goto(&self, path: &str) {
        let url = self.url(path);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("go to {url}: {e}"));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs `script`, which calls `arguments[arguments.length - 1]` with its result.
    pub async fn js_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute_async(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// `fetch` from the current page with its cookies: the status and the JSON body (Null when
    /// not JSON). With `csrf`, the `X-CSRF-Token` header carries the `atrium_csrf` cookie, as
    /// the UI's own script does.
    pub async fn fetch(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> (u16, Value) {
        let answer = self
            .js_async(
                FETCH,
                vec![json!(method), json!(path), json!(body), json!(csrf)],
            )
            .await;
        let status = answer["status"].as_u64().unwrap_or(0) as u16;
        assert_ne!(status, 0, "fetch {method} {path} failed: {answer}");
        (status, answer["json"].clone())
    }

    /// Signs in through `POST /api/v1/login` from the page, as a script would (the cookies
    /// land in the browser).
    pub async fn api_login(&self, username: &str, password: &str) {
        let (status, body) = self
            .fetch(
                "POST",
                "/api/v1/login",
                Some(json!({"username": username, "password": password})),
                false,
            )
            .await;
        assert_eq!(status, 200, "login {username}: {body}");
    }

    /// The element `css` once it exists and is displayed, within `timeout`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> fantoccini::elements::Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && element.is_displayed().await.unwrap_or(false)
            {
                return element;
            }
            if Instant::now() > deadline {
                let page = self.describe().await;
                panic!("{css} never showed within {timeout:?}; {page}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `script` (a function body) returns something truthy; returns it.
    pub async fn wait_until(&self, what: &str, script: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self
                .client
                .execute(script, vec![])
                .await
                .unwrap_or(Value::Null);
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let page = self.describe().await;
                panic!("{what}: not within {timeout:?}; {page}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Where the browser is and what it shows, frames included, and the console's errors: for
    /// failure messages.
    pub async fn describe(&self) -> String {
        let page = self
            .client
            .execute(DESCRIBE, vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "(the page could not be read)".into());
        let errors: Vec<String> = self
            .console()
            .await
            .into_iter()
            .filter(|l| l.contains("SEVERE"))
            .collect();
        format!("{page}\n-- console errors:\n{}", errors.join("\n"))
    }

    /// The browser console's messages since the last call (errors of failed loads among them).
    pub async fn console(&self) -> Vec<String> {
        let Ok(Some(id)) = self.client.session_id().await else {
            return Vec::new();
        };
        let url = format!("{}/session/{id}/se/log", self.driver_url);
        let answer = reqwest::Client::new()
            .post(url)
            .json(&json!({"type": "browser"}))
            .send()
            .await;
        let Ok(answer) = answer else {
            return Vec::new();
        };
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        body["value"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| format!("{} {}", e["level"], e["message"]))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The visible text of the current document.
    pub async fn body_text(&self) -> String {
        self.client
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The HTTP status of the current document's navigation (Resource Timing).
    pub async fn navigation_status(&self) -> u64 {
        self.js(
            "const n = performance.getEntriesByType('navigation')[0]; \
             return n ? n.responseStatus : 0;",
            vec![],
        )
        .await
        .as_u64()
        .unwrap_or(0)
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

const DESCRIBE: &str = r#"
const text = (d) => (d && d.body ? d.body.innerText : '').slice(0, 2000);
let out = `the page at ${location.href} says:\n${text(document)}`;
for (const f of document.querySelectorAll('iframe')) {
  try {
    const d = f.contentDocument;
    const status = d && d.getElementById('noVNC_status');
    out += `\n-- frame ${f.getAttribute('src')} at ${d ? d.location.href : '?'}`
      + ` (classes: ${d ? d.documentElement.className : ''})`
      + (status ? `, noVNC status: ${status.textContent}` : '')
      + `:\n${text(d)}`
      + `\n   its requests: ${f.contentWindow.performance.getEntriesByType('resource')
          .map((e) => `${e.name.replace(location.origin, '')} ${e.responseStatus}`).join(', ')}`;
  } catch (e) {
    out += `\n-- frame ${f.getAttribute('src')}: not readable (${e})`;
  }
}
return out;
"#;

const FETCH: &str = r#"
const [method, path, body, csrf, done] = arguments;
const headers = {};
if (body !== null) headers['content-type'] = 'application/json';
if (csrf) {
  const m = document.cookie.match(/(?:^|;\s*)atrium_csrf=([^;]*)/);
  if (m) headers['x-csrf-token'] = m[1];
}
fetch(path, { method, headers, credentials: 'same-origin',
              body: body === null ? undefined : JSON.stringify(body) })
  .then(async (r) => {
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch (e) {}
    done({ status: r.status, json, text });
  })
  .catch((e) => done({ status: 0, json: null, text: String(e) }));
"#;
