//! docs/screenshots/*.png, taken from the real UI on the real stack (`scripts/screenshots`
//! runs this ignored test): the login page, the dashboard, a launch in progress, the demo
//! workspace and the desktop running in the session view, the admin's users and a group's
//! settings editor refusing a value.
//! `ATRIUM_SCREENSHOTS_DIR` writes them elsewhere.

use std::path::PathBuf;
use std::time::Duration;

use atrium_integration_tests::USER_PASSWORD;
use atrium_launcher::Caller;
use atrium_proto::policy::v1 as pol;

use crate::common::user;
use crate::driver::{Chrome, browser_enabled};
use crate::flows::{
    LAUNCH, Ready, STEP, click, in_frame, launch_button, launch_from_dashboard, leave_frame,
    sign_in_to_dashboard,
};
use crate::stack::Gateway;

fn out_dir() -> PathBuf {
    std::env::var_os("ATRIUM_SCREENSHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("docs")
                .join("screenshots")
        })
}

/// A workspace of `image` for All Users, named for people.
async fn workspace(
    gw: &Gateway,
    image: &str,
    friendly: &str,
    description: &str,
    categories: &[&str],
    cores: f64,
    memory_mib: i64,
) -> String {
    let admin = gw.sandbox.admin().expect("admin").clone();
    gw.sandbox
        .running()
        .policy(&Caller::User(admin))
        .await
        .expect("policy")
        .create_workspace(pol::CreateWorkspaceRequest {
            workspace: Some(pol::Workspace {
                name: image.into(),
                friendly_name: friendly.into(),
                description: description.into(),
                categories: categories.iter().map(|c| (*c).to_owned()).collect(),
                enabled: true,
                cores,
                memory_mib,
                ..Default::default()
            }),
            assign_to_all_users: Some(true),
        })
        .await
        .expect("create the workspace")
        .into_inner()
        .id
}

/// Holds back the watch stream's "running" event (and the view's first look at the session says
/// starting) until [`RELEASE`] runs, so that a launch stays
/// on its progress view long enough to be photographed (the demo workspace starts in a
/// fraction of a second).
const HOLD_RUNNING: &str = r#"
const Real = window.EventSource;
window.__atriumHold = true;
window.__atriumHeld = [];
class Held extends Real {
  set onmessage(fn) {
    super.onmessage = (ev) => {
      if (window.__atriumHold && /OBSERVED_STATE_RUNNING/.test(ev.data)) {
        window.__atriumHeld.push(() => fn(ev));
        return;
      }
      fn(ev);
    };
  }
  get onmessage() { return super.onmessage; }
}
window.EventSource = Held;
// The session view's first GET of the session, when it already says running.
const realFetch = window.fetch;
window.fetch = async (...args) => {
  const answer = await realFetch(...args);
  const url = String((args[0] && args[0].url) || args[0]).split('?')[0];
  if (!window.__atriumHold || !/\/api\/v1\/sessions\/[0-9a-f-]{36}$/.test(url)) return answer;
  const text = await answer.clone().text();
  if (!text.includes('"OBSERVED_STATE_RUNNING"')) return answer;
  const held = text.replace('"OBSERVED_STATE_RUNNING"', '"OBSERVED_STATE_STARTING"');
  return new Response(held, { status: answer.status, headers: answer.headers });
};
"#;

const RELEASE: &str = r#"
window.__atriumHold = false;
for (const f of window.__atriumHeld || []) f();
window.__atriumHeld = [];
"#;

/// Closes the session view's tip about the control panel, when it shows.
async fn dismiss_tip(chrome: &Chrome) {
    chrome
        .js(
            "const b = document.getElementById('session-tip-close'); if (b) b.click();",
            vec![],
        )
        .await;
}

#[tokio::test]
#[ignore = "writes docs/screenshots: run by scripts/screenshots"]
async fn screenshots() {
    let Some(programs) = browser_enabled("screenshots") else {
        return;
    };
    assert!(
        atrium_integration_tests::docker_enabled("screenshots"),
        "the screenshots need Docker (ATRIUM_TEST_DOCKER=1)"
    );
    let dir = out_dir();
    let gw = Gateway::start().await;
    let demo = tokio::task::spawn_blocking(atrium_integration_tests::demo_image)
        .await
        .expect("join")
        .expect("demo image");
    workspace(
        &gw,
        &demo,
        "Demo workspace",
        "A small HTTPS page with a notes box: the stand-in the tests use.",
        &["Testing"],
        0.25,
        128,
    )
    .await;
    let desktop = tokio::task::spawn_blocking(|| {
        std::process::Command::new("docker")
            .args(["image", "inspect", "atrium/workspace-desktop:latest"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .await
    .expect("join");
    if desktop {
        workspace(
            &gw,
            "atrium/workspace-desktop:latest",
            "Debian desktop",
            "Xvnc, JWM and xterm in your browser through noVNC.",
            &["Desktops"],
            1.0,
            2048,
        )
        .await;
    }
    let maria = user(&gw, "maria", &[("allow_kasm_stop", "true")]).await;
    let chrome = Chrome::start(&programs, &gw.url).await;

    chrome.goto("/login").await;
    chrome.wait_for("#login-username", STEP).await;
    chrome.screenshot(&dir.join("login.png")).await;

    sign_in_to_dashboard(&chrome, &maria.username, USER_PASSWORD).await;
    chrome.wait_for(&launch_button(&demo), STEP).await;
    tokio::time::sleep(Duration::from_millis(3500)).await; // the welcome toast goes

    // A launch caught on its progress view.
    chrome.js(HOLD_RUNNING, vec![]).await;
    click(&chrome, &launch_button(&demo)).await;
    chrome
        .wait_until(
            "the launch progress",
            "return location.pathname.startsWith('/connect/') && !!document.getElementById('launch-progress')",
            LAUNCH,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    chrome.screenshot(&dir.join("launch-progress.png")).await;
    chrome.js(RELEASE, vec![]).await;
    crate::flows::frame_shows(&chrome, crate::ui::DEMO_TITLE, LAUNCH).await;

    // The demo workspace in the session view, a note typed, the control panel open.
    in_frame(&chrome).await;
    chrome
        .wait_for("#notes", STEP)
        .await
        .send_keys("Shopping: milk, bread.\nCall the plumber on Tuesday.")
        .await
        .expect("type");
    leave_frame(&chrome).await;
    dismiss_tip(&chrome).await;
    click(&chrome, "#panel-toggle").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    chrome.screenshot(&dir.join("demo-session.png")).await;

    // The dashboard with the running session listed.
    click(&chrome, "#panel-workspaces").await;
    chrome.wait_for("#session-list [data-session]", STEP).await;
    chrome.screenshot(&dir.join("dashboard.png")).await;

    if desktop {
        let launch = launch_from_dashboard(
            &chrome,
            "atrium/workspace-desktop:latest",
            Ready::NoVncConnected,
        )
        .await;
        dismiss_tip(&chrome).await;
        tokio::time::sleep(Duration::from_secs(2)).await; // the desktop draws
        chrome.screenshot(&dir.join("desktop-session.png")).await;
        eprintln!("desktop session {}", launch.session_id);
    } else {
        eprintln!("no desktop image: desktop-session.png not taken (atrium image build-desktop)");
    }
    chrome.close().await;

    // Two admin pages: the users, and a group's settings editor refusing a value.
    let admin = Chrome::start(&programs, &gw.url).await;
    crate::admin::admin_at(&admin, "/admin/users").await;
    admin.wait_for("#users-table", STEP).await;
    tokio::time::sleep(Duration::from_millis(3500)).await; // the welcome toast goes
    admin.screenshot(&dir.join("admin-users.png")).await;
    admin
        .goto(&format!("/admin/groups/{}", maria.group_id))
        .await;
    admin
        .wait_for("#settings-filter", STEP)
        .await
        .send_keys("keepalive")
        .await
        .expect("filter the settings");
    crate::admin::save_setting(&admin, "keepalive_expiration", "-5").await;
    admin
        .wait_for("#setting-keepalive_expiration-error", STEP)
        .await;
    admin
        .js(
            "document.getElementById('settings-editor').scrollIntoView()",
            vec![],
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    admin.screenshot(&dir.join("admin-settings.png")).await;
    admin.close().await;
    eprintln!("screenshots in {}", dir.display());
}
