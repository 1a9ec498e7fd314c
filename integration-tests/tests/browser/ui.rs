//! The browser UI end to end, as a person uses it: sign in through the form, launch the demo
//! workspace from its card, work in it through the session frame, stop, resume, delete; and
//! two-factor enrolment required by a group.

use atrium_integration_tests::USER_PASSWORD;

use crate::common::{demo, user, wait_state};
use crate::driver::{Chrome, browser_enabled};
use crate::flows::{
    LAUNCH, Ready, STEP, click, frame_shows, in_frame, launch_from_dashboard, leave_frame, panel,
    sign_in, sign_in_to_dashboard, text_of,
};
use crate::stack::Gateway;
use crate::totp;

pub const DEMO_TITLE: &str = "Atrium demo workspace";

#[tokio::test]
async fn sign_in_launch_write_a_note_stop_resume_and_find_it_then_delete() {
    let test = "sign_in_launch_write_a_note_stop_resume_and_find_it_then_delete";
    let Some(programs) = browser_enabled(test) else {
        return;
    };
    if !atrium_integration_tests::docker_enabled(test) {
        return;
    }
    let gw = Gateway::start().await;
    let (_, name) = demo(&gw).await;
    let alice = user(&gw, "alice", &[("allow_kasm_stop", "true")]).await;

    let chrome = Chrome::start(&programs, &gw.url).await;
    sign_in_to_dashboard(&chrome, &alice.username, USER_PASSWORD).await;
    let launch = launch_from_dashboard(&chrome, &name, Ready::Text(DEMO_TITLE)).await;
    let id = launch.session_id.clone();
    eprintln!(
        "launch: UI {:?}, session-manager {:?}, ms after the click: {}",
        launch.ui, launch.service, launch.phases
    );

    // A note, typed and saved in the workspace's own page inside the frame.
    let note = format!("note from the browser test {}", uuid::Uuid::new_v4());
    in_frame(&chrome).await;
    let notes = chrome.wait_for("#notes", STEP).await;
    notes.clear().await.expect("clear the notes");
    notes.send_keys(&note).await.expect("type the note");
    click(&chrome, "#save").await;
    chrome
        .wait_until(
            "the note saved",
            "return document.getElementById('status').textContent === 'saved'",
            STEP,
        )
        .await;
    leave_frame(&chrome).await;

    // Stop from the control panel: the frame goes, the view says stopped.
    panel(&chrome, "#panel-stop").await;
    wait_state(&chrome, &id, "OBSERVED_STATE_STOPPED", LAUNCH).await;
    chrome
        .wait_until(
            "the session view says stopped",
            "const s = document.getElementById('launch-state'); \
             return !!s && s.textContent.startsWith('stopped') && !document.getElementById('session-frame');",
            STEP,
        )
        .await;

    // Resume from the panel: the same container, the note still there.
    panel(&chrome, "#panel-resume").await;
    frame_shows(&chrome, DEMO_TITLE, LAUNCH).await;
    in_frame(&chrome).await;
    let kept = chrome
        .wait_until(
            "the notes box",
            "const n = document.getElementById('notes'); return n ? n.value : null;",
            STEP,
        )
        .await;
    assert_eq!(
        kept.as_str(),
        Some(note.as_str()),
        "the note survived stop and resume"
    );
    leave_frame(&chrome).await;

    // Delete: confirmed in the dialog, back on the dashboard, the session goes away.
    panel(&chrome, "#panel-delete").await;
    click(&chrome, "#confirm-ok").await;
    chrome.wait_for("#workspace-list", STEP).await;
    wait_state(&chrome, &id, "OBSERVED_STATE_DELETED", LAUNCH).await;
    chrome.close().await;
}

#[tokio::test]
async fn a_require_2fa_group_member_enrols_from_the_key_shown_then_signs_in_with_a_code() {
    let test = "a_require_2fa_group_member_enrols_from_the_key_shown_then_signs_in_with_a_code";
    let Some(programs) = browser_enabled(test) else {
        return;
    };
    let gw = Gateway::start().await;
    let carol = user(&gw, "carol", &[("require_2fa", "true")]).await;
    let chrome = Chrome::start(&programs, &gw.url).await;

    // The password alone leads to enrolment: a QR code, and the key as text.
    sign_in(&chrome, &carol.username, USER_PASSWORD).await;
    chrome.wait_for("#enroll-qr svg", STEP).await;
    let shown = text_of(&chrome, "#enroll-secret").await;
    let secret = totp::decode_secret(&shown);
    let uri = text_of(&chrome, "#enroll-uri").await;
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(
        uri.contains(&format!("secret={}", shown.replace(' ', ""))),
        "{uri}"
    );

    // A wrong code is refused with a message; the right one signs in.
    let now = totp::now_step();
    let wrong = totp::code(&secret, now + 10);
    let code_box = chrome.wait_for("#enroll-code", STEP).await;
    code_box.send_keys(&wrong).await.expect("type a code");
    click(&chrome, "#enroll-submit").await;
    let refused = text_of(&chrome, "#enroll-error").await;
    assert!(!refused.trim().is_empty(), "a wrong code says why");
    code_box.clear().await.expect("clear");
    code_box
        .send_keys(&totp::code(&secret, now))
        .await
        .expect("type the code");
    click(&chrome, "#enroll-submit").await;
    chrome.wait_for("#workspace-list", STEP).await;

    // Signed out and in again: the password, then a code (the next step's: a code is used
    // once, and one step of drift is allowed).
    click(&chrome, "#nav-logout").await;
    chrome.wait_for("#login-username", STEP).await;
    sign_in(&chrome, &carol.username, USER_PASSWORD).await;
    let totp_box = chrome.wait_for("#login-totp", STEP).await;
    totp_box
        .send_keys(&totp::code(&secret, now + 1))
        .await
        .expect("type the code");
    click(&chrome, "#login-submit").await;
    chrome.wait_for("#workspace-list", STEP).await;
    let (status, me) = chrome.fetch("GET", "/api/v1/me", None, false).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], carol.username.as_str(), "{me}");
    chrome.close().await;
}

#[tokio::test]
async fn every_pages_first_load_stays_under_100_kb_and_asks_only_the_gateway() {
    let test = "every_pages_first_load_stays_under_100_kb_and_asks_only_the_gateway";
    let Some(programs) = browser_enabled(test) else {
        return;
    };
    let with_docker = atrium_integration_tests::docker_enabled(test);
    let gw = Gateway::start().await;
    let erin = user(&gw, "erin", &[]).await;
    let mut pages = crate::pages::user_pages();
    if with_docker {
        let (workspace, _) = demo(&gw).await;
        pages.push(crate::pages::launch_page(&workspace));
    }
    let admin_pages = crate::pages::admin_pages(&erin.group_id);
    let as_erin = (erin.username.as_str(), USER_PASSWORD);
    let as_admin = ("admin", atrium_integration_tests::ADMIN_PASSWORD);
    let mut failures = Vec::new();
    for (page, login) in pages
        .iter()
        .map(|p| (p, as_erin))
        .chain(admin_pages.iter().map(|p| (p, as_admin)))
    {
        let load = crate::pages::first_load(&programs, &gw.url, page, login).await;
        let bytes = load.bytes();
        eprintln!(
            "{:<10} {:>7} bytes in {:>2} requests ({})",
            page.name,
            bytes,
            load.requests.len(),
            load.kinds()
        );
        if bytes >= crate::pages::BUDGET_BYTES {
            failures.push(format!(
                "{}: {bytes} bytes: {:#?}",
                page.name, load.requests
            ));
        }
        let foreign = load.foreign(&gw.url);
        if !foreign.is_empty() {
            failures.push(format!("{}: requests elsewhere: {foreign:#?}", page.name));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
