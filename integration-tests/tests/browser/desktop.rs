//! The real desktop in the browser: launched from its card in the UI, noVNC in the session
//! frame reaches "connected" over the gateway's proxy (the page, then the WebSocket), and a
//! command typed into its terminal runs in the session's container.
//!
//! The image comes from `atrium image build-desktop` (debootstrap the first time, a few minutes;
//! afterwards found by its recipe hash at once).

use std::process::Command;
use std::time::Duration;

use atrium_integration_tests::{USER_PASSWORD, cargo_binary, demo_workspace};

use crate::common::{delete_and_wait, user};
use crate::driver::{Chrome, browser_enabled};
use crate::flows::{
    LAUNCH, Ready, STEP, in_frame, launch_from_dashboard, leave_frame, sign_in_to_dashboard,
};
use crate::stack::Gateway;

/// The desktop image's tag, built or found by `atrium image build-desktop`.
pub fn desktop_image() -> String {
    let atrium = cargo_binary("atrium-cli", "atrium").expect("the atrium binary");
    let tag = "atrium/workspace-desktop:latest";
    let out = Command::new(atrium)
        .args(["image", "build-desktop", "--tag", tag])
        .output()
        .expect("run atrium image build-desktop");
    assert!(
        out.status.success(),
        "atrium image build-desktop failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    tag.to_owned()
}

/// The desktop workspace, assigned to All Users: its id and name.
pub async fn desktop(gw: &Gateway) -> (String, String) {
    let image = tokio::task::spawn_blocking(desktop_image)
        .await
        .expect("join");
    let admin = gw.sandbox.admin().expect("admin").clone();
    let id = demo_workspace(gw.sandbox.running(), &admin, &image, 1.0, 2048)
        .await
        .expect("desktop workspace");
    (id, image)
}

#[tokio::test]
async fn the_desktop_launched_from_the_ui_connects_novnc_through_the_proxy() {
    let test = "the_desktop_launched_from_the_ui_connects_novnc_through_the_proxy";
    let Some(programs) = browser_enabled(test) else {
        return;
    };
    if !atrium_integration_tests::docker_enabled(test) {
        return;
    }
    let gw = Gateway::start().await;
    let (_, name) = desktop(&gw).await;
    let dave = user(&gw, "dave", &[]).await;
    let chrome = Chrome::start(&programs, &gw.url).await;
    sign_in_to_dashboard(&chrome, &dave.username, USER_PASSWORD).await;
    let launch = launch_from_dashboard(&chrome, &name, Ready::NoVncConnected).await;
    eprintln!(
        "desktop: noVNC connected {:?} after the click; the session-manager's request→running \
         {:?}; frame reloads after a network change: {}",
        launch.ui, launch.service, launch.network_changed
    );
    // The status line says so too, in noVNC's words.
    let status = chrome
        .wait_until(
            "noVNC's status",
            "const d = document.getElementById('session-frame').contentDocument; \
             const s = d && d.getElementById('noVNC_status'); return s ? s.textContent : null;",
            LAUNCH,
        )
        .await;
    assert!(
        status.as_str().unwrap_or_default().starts_with("Connected"),
        "{status}"
    );
    type_into_the_terminal(&chrome, &launch.session_id).await;
    delete_and_wait(&chrome, &launch.session_id, LAUNCH).await;
    chrome.close().await;
}

/// Clicks into the desktop (the xterm JWM opened fills the middle of the screen) and types a
/// command as key presses through noVNC; the file it makes must appear in the session's
/// container.
async fn type_into_the_terminal(chrome: &Chrome, session_id: &str) {
    use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
    let marker = format!(
        "typed-in-the-browser-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    in_frame(chrome).await;
    let canvas = chrome.wait_for("#noVNC_container canvas", STEP).await;
    canvas.click().await.expect("click into the desktop");
    let mut keys = KeyActions::new("keyboard".into());
    for ch in format!("touch /tmp/{marker}").chars().chain(['\u{E007}']) {
        keys = keys
            .then(KeyAction::Down { value: ch })
            .then(KeyAction::Up { value: ch });
    }
    chrome
        .client
        .perform_actions(keys)
        .await
        .expect("type into the desktop");
    leave_frame(chrome).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let listed = Command::new("docker")
            .args(["ps", "-q", "--filter"])
            .arg(format!("label=atrium.session_id={session_id}"))
            .output()
            .expect("docker ps");
        let container = String::from_utf8_lossy(&listed.stdout).trim().to_owned();
        if !container.is_empty() {
            let found = Command::new("docker")
                .args(["exec", &container, "test", "-e"])
                .arg(format!("/tmp/{marker}"))
                .status()
                .expect("docker exec");
            if found.success() {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "typing `touch /tmp/{marker}` into the desktop's terminal made no file in 20 s \
             (container {container:?})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
