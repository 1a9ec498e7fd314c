//! The admin pages in the browser: the settings editor refuses a bad value with a message that
//! names the setting, beside its input, and nothing is stored; a good value is saved.

use atrium_integration_tests::ADMIN_PASSWORD;

use crate::common::user;
use crate::driver::{Chrome, browser_enabled};
use crate::flows::{STEP, click, sign_in};
use crate::stack::Gateway;

/// Signs the administrator in through the form and opens `path`.
pub async fn admin_at(chrome: &Chrome, path: &str) {
    sign_in(chrome, "admin", ADMIN_PASSWORD).await;
    chrome.wait_for("#app-nav", STEP).await;
    chrome.goto(path).await;
}

/// Types `value` into the setting's input and presses its *Save*.
pub async fn save_setting(chrome: &Chrome, name: &str, value: &str) {
    let input = chrome.wait_for(&format!("#setting-{name}"), STEP).await;
    input.clear().await.expect("clear the setting");
    input.send_keys(value).await.expect("type the value");
    click(chrome, &format!("#setting-{name}-save")).await;
}

#[tokio::test]
async fn the_settings_editor_refuses_a_bad_value_naming_the_setting() {
    let test = "the_settings_editor_refuses_a_bad_value_naming_the_setting";
    let Some(programs) = browser_enabled(test) else {
        return;
    };
    let gw = Gateway::start().await;
    let member = user(&gw, "frank", &[]).await;
    let chrome = Chrome::start(&programs, &gw.url).await;
    admin_at(&chrome, &format!("/admin/groups/{}", member.group_id)).await;
    chrome.wait_for("#settings-editor", STEP).await;

    save_setting(&chrome, "keepalive_expiration", "-5").await;
    let error = chrome
        .wait_for("#setting-keepalive_expiration-error", STEP)
        .await
        .text()
        .await
        .expect("the error");
    assert!(error.contains("keepalive_expiration"), "{error}");
    let invalid = chrome
        .js(
            "return document.getElementById('setting-keepalive_expiration').getAttribute('aria-invalid')",
            vec![],
        )
        .await;
    assert_eq!(invalid, "true");
    let path = format!("/api/v1/groups/{}/settings", member.group_id);
    let (status, settings) = chrome.fetch("GET", &path, None, false).await;
    assert_eq!(status, 200, "{settings}");
    assert!(
        !settings.to_string().contains("keepalive_expiration"),
        "a refused value is not stored: {settings}"
    );

    save_setting(&chrome, "keepalive_expiration", "600").await;
    chrome
        .wait_until(
            "the setting saved",
            "const e = document.getElementById('setting-keepalive_expiration-error'); \
             const s = document.getElementById('setting-keepalive_expiration-state'); \
             return e.hidden && s.textContent.includes('set here');",
            STEP,
        )
        .await;
    let (_, settings) = chrome.fetch("GET", &path, None, false).await;
    assert!(
        settings.to_string().contains("keepalive_expiration"),
        "{settings}"
    );
    chrome.close().await;
}
