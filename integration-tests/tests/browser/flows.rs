//! Steps a person takes in the UI, shared by the scenarios, the screenshots and the benchmark:
//! signing in through the form, launching a workspace from its card and timing it, working in
//! the session frame, the control panel.

use std::time::Duration;

use serde_json::{Value, json};

use crate::driver::Chrome;

/// How long a UI step may take before the scenario fails (containers start in a few seconds
/// here; a loaded 2-core machine needs more).
pub const STEP: Duration = Duration::from_secs(30);
pub const LAUNCH: Duration = Duration::from_secs(120);

/// Opens `/login`, types the username and password and presses *Sign in*.
pub async fn sign_in(chrome: &Chrome, username: &str, password: &str) {
    chrome.goto("/login").await;
    chrome
        .wait_for("#login-username", STEP)
        .await
        .send_keys(username)
        .await
        .expect("type the username");
    chrome
        .wait_for("#login-password", STEP)
        .await
        .send_keys(password)
        .await
        .expect("type the password");
    chrome
        .wait_for("#login-submit", STEP)
        .await
        .click()
        .await
        .expect("press sign in");
}

/// Signs in and waits for the dashboard's list of workspaces.
pub async fn sign_in_to_dashboard(chrome: &Chrome, username: &str, password: &str) {
    sign_in(chrome, username, password).await;
    chrome.wait_for("#workspace-list", STEP).await;
}

/// The launch button of the workspace whose name (image) is `name`.
pub fn launch_button(name: &str) -> String {
    format!("[data-workspace=\"{name}\"] [data-action=launch]")
}

/// What one launch from the dashboard measured.
pub struct Launch {
    pub session_id: String,
    /// From the click on the card's *Launch* to the workspace's own page shown in the session
    /// frame, measured by the page's clock.
    pub ui: Duration,
    /// The session-manager's `created_at` → `started_at` for the same session.
    pub service: Duration,
    /// Where the time went, in ms since the click: the session request sent and answered
    /// (Resource Timing), the session-manager's `created_at` and `started_at` (`created`,
    /// `running`), the session view's first read of the session, the session frame's request
    /// sent and its page received.
    pub phases: Value,
    /// How often the frame was reloaded because Docker changed the host's network mid-load
    /// (the launch's time then includes the reload).
    pub network_changed: u32,
}

/// What says that a session's page is up in the session frame.
#[derive(Debug, Clone, Copy)]
pub enum Ready<'a> {
    /// The frame's text contains this (the demo workspace's own page).
    Text(&'a str),
    /// noVNC in the frame has connected to the desktop through the proxy's WebSocket.
    NoVncConnected,
}

impl Ready<'_> {
    fn js(self) -> (&'static str, String) {
        match self {
            Ready::Text(text) => ("text", text.to_owned()),
            Ready::NoVncConnected => ("novnc", String::new()),
        }
    }
}

/// Clicks *Launch* on the workspace card `name` and waits until the session frame is `ready`
/// (the page's own clock times it, polling every 10 ms).
pub async fn launch_from_dashboard(chrome: &Chrome, name: &str, ready: Ready<'_>) -> Launch {
    let button = chrome.wait_for(&launch_button(name), STEP).await;
    let (mode, text) = ready.js();
    chrome
        .js(ARM_LAUNCH_TIMER, vec![json!(mode), json!(text)])
        .await;
    button.click().await.expect("press launch");
    // Chromium aborts requests in flight with ERR_NETWORK_CHANGED when the host's network
    // interfaces change, which Docker does whenever a container starts or goes (any test's,
    // on this machine). A browser on a user's own machine never sees that: reload the frame.
    let mut network_changed = 0;
    let deadline = std::time::Instant::now() + LAUNCH;
    let done = loop {
        let done = chrome
            .js("return window.__atriumLaunch || null", vec![])
            .await;
        if !done.is_null() {
            break done;
        }
        let console = chrome.console().await;
        if console.iter().any(|l| l.contains("ERR_NETWORK_CHANGED")) && network_changed < 3 {
            network_changed += 1;
            eprintln!("the host's network changed during the load (Docker): the frame is reloaded");
            chrome
                .js(
                    "const f = document.getElementById('session-frame'); if (f) f.src = f.src;",
                    vec![],
                )
                .await;
        }
        if std::time::Instant::now() > deadline {
            let page = chrome.describe().await;
            panic!("the session frame {ready:?}: not within {LAUNCH:?}; {page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ui = Duration::from_secs_f64(done["ms"].as_f64().unwrap_or(0.0) / 1000.0);
    let path = done["path"].as_str().unwrap_or_default();
    let session_id = path
        .strip_prefix("/connect/")
        .unwrap_or_else(|| panic!("the session view is at /connect/<id>, not {path}"))
        .to_owned();
    let (_, session) = chrome
        .fetch(
            "GET",
            &format!("/api/v1/sessions/{session_id}"),
            None,
            false,
        )
        .await;
    // The session-manager's two moments on the page's clock (one machine, one wall clock).
    let mut phases = done["phases"].clone();
    let t0 = done["t0_epoch_ms"].as_f64().unwrap_or(0.0);
    for (name, field) in [("created", "created_at"), ("running", "started_at")] {
        if let Some(at) = session[field]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        {
            phases[name] = json!((at.timestamp_micros() as f64 / 1000.0 - t0).round());
        }
    }
    Launch {
        session_id,
        ui,
        service: span(&session, "created_at", "started_at"),
        phases,
        network_changed,
    }
}

/// The time between two RFC 3339 timestamps of a session.
pub fn span(session: &Value, from: &str, to: &str) -> Duration {
    let at = |field: &str| {
        session[field]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .unwrap_or_else(|| panic!("session {field} is not a time: {session}"))
    };
    (at(to) - at(from)).to_std().unwrap_or_default()
}

/// Waits until the session frame's document contains `text`.
pub async fn frame_shows(chrome: &Chrome, text: &str, timeout: Duration) {
    chrome
        .js("window.__atriumExpect = arguments[0];", vec![json!(text)])
        .await;
    chrome
        .wait_until(
            &format!("the session frame showing {text:?}"),
            FRAME_HAS_TEXT,
            timeout,
        )
        .await;
}

/// Switches WebDriver into the session frame ([`leave_frame`] comes back).
pub async fn in_frame(chrome: &Chrome) {
    let frame = chrome.wait_for("#session-frame", STEP).await;
    frame.enter_frame().await.expect("enter the session frame");
}

pub async fn leave_frame(chrome: &Chrome) {
    chrome
        .client
        .enter_parent_frame()
        .await
        .expect("leave the session frame");
}

/// Opens the control panel (if closed) and presses `button` in it.
pub async fn panel(chrome: &Chrome, button: &str) {
    let open = chrome
        .js(
            "const b = document.getElementById('control-panel-body'); return !!b && !b.hidden;",
            vec![],
        )
        .await;
    if open != Value::Bool(true) {
        chrome
            .wait_for("#panel-toggle", STEP)
            .await
            .click()
            .await
            .expect("open the control panel");
    }
    chrome
        .wait_for(button, STEP)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("press {button}: {e}"));
}

/// Clicks the element `css` once it shows.
pub async fn click(chrome: &Chrome, css: &str) {
    chrome
        .wait_for(css, STEP)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("press {css}: {e}"));
}

/// The text of the element `css` once it shows.
pub async fn text_of(chrome: &Chrome, css: &str) -> String {
    chrome
        .wait_for(css, STEP)
        .await
        .text()
        .await
        .unwrap_or_else(|e| panic!("read {css}: {e}"))
}

const FRAME_HAS_TEXT: &str = r#"
const f = document.getElementById('session-frame');
let d = null;
try { d = f && f.contentDocument; } catch (e) { return false; }
return !!(d && d.body && d.body.innerText.includes(window.__atriumExpect));
"#;

/// From the click, polls every 10 ms for the session frame to be ready (`arguments[0]`: "text" with
/// the text in `arguments[1]`, or "novnc"), then records the elapsed time and the app's path in
/// `window.__atriumLaunch` (the app routes with history, so the page's globals live on across
/// its pages).
const ARM_LAUNCH_TIMER: &str = r#"
const [mode, expect] = arguments;
window.__atriumLaunch = null;
// The clock starts when the click reaches the page (not when WebDriver is asked to click).
let t0 = performance.now();
document.addEventListener('click', () => { t0 = performance.now(); }, { capture: true, once: true });
const timer = setInterval(() => {
  const f = document.getElementById('session-frame');
  let d = null;
  try { d = f && f.contentDocument; } catch (e) { d = null; }
  if (!d || !d.body) return;
  const ready = mode === 'novnc'
    ? d.documentElement.classList.contains('noVNC_connected')
    : d.body.innerText.includes(expect);
  if (ready) {
    clearInterval(timer);
    const at = (x) => Math.round(x - t0);
    const phases = {};
    for (const e of performance.getEntriesByType('resource')) {
      if (e.startTime < t0) continue;
      if (/\/api\/v1\/sessions$/.test(e.name) && phases.request_sent === undefined) {
        phases.request_sent = at(e.startTime);
        phases.request_answered = at(e.responseEnd);
      }
      if (/\/api\/v1\/sessions\/[0-9a-f-]{36}$/.test(e.name) && phases.session_read === undefined) {
        phases.session_read = at(e.responseEnd);
      }
      if (e.initiatorType === 'iframe' && /\/session\//.test(e.name) && phases.frame_requested === undefined) {
        phases.frame_requested = at(e.startTime);
        phases.frame_received = at(e.responseEnd);
      }
    }
    window.__atriumLaunch = {
      ms: performance.now() - t0, path: location.pathname, phases,
      t0_epoch_ms: performance.timeOrigin + t0,
    };
  }
}, 10);
"#;
