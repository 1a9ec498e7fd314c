//! The browser UI in real headless Chromium, against the whole stack in this process (the
//! browser tests' harness, shared by path):
//!
//! - **launch:** from the click on a workspace card's *Launch* to the session frame showing the
//!   workspace's own page (timed by the page's clock, every 10 ms), ÷ the session-manager's
//!   `created_at` → `started_at` of the same session. The median of several launches of the demo
//!   workspace, and of the desktop (noVNC connected) when its image is present.
//! - **first loads:** each page in a fresh browser (empty cache): bytes transferred
//!   (compressed, from Resource Timing's `transferSize`, the session frame's included), the
//!   number of requests, and any request to a host other than the gateway.
//!
//!   scripts/bench-ui
//!
//! Needs Docker, chromium and chromedriver (`ATRIUM_TEST_CHROMIUM`,
//! `ATRIUM_TEST_CHROMEDRIVER`; the script installs and sets them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use atrium_integration_tests::{USER_PASSWORD, demo_workspace};

#[allow(dead_code)]
#[path = "../tests/gateway/common.rs"]
mod stack;

#[allow(dead_code)]
#[path = "../tests/browser/common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../tests/browser/driver.rs"]
mod driver;
#[allow(dead_code)]
#[path = "../tests/browser/flows.rs"]
mod flows;
#[allow(dead_code)]
#[path = "../tests/browser/pages.rs"]
mod pages;

use driver::{Chrome, browser_enabled};
use flows::{LAUNCH, Ready, launch_from_dashboard, sign_in_to_dashboard};
use stack::Gateway;

const DEMO_LAUNCHES: usize = 7;
const DESKTOP_LAUNCHES: usize = 3;
const DESKTOP_IMAGE: &str = "atrium/workspace-desktop:latest";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Launches `name` `n` times from the dashboard, deleting each session after; prints each run
/// and the medians.
async fn launches(chrome: &Chrome, label: &str, name: &str, ready: Ready<'_>, n: usize) {
    let (mut ui, mut service, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=n {
        chrome.goto("/").await;
        let launch = launch_from_dashboard(chrome, name, ready).await;
        println!(
            "  {label} run {run}: UI {}, session-manager {}, ratio {:.2}; ms after the click: {}{}",
            ms(launch.ui),
            ms(launch.service),
            launch.ui.as_secs_f64() / launch.service.as_secs_f64(),
            launch.phases,
            if launch.network_changed > 0 {
                " (DISTURBED: the frame was reloaded after Docker changed the network)"
            } else {
                ""
            }
        );
        ratios.push(launch.ui.as_secs_f64() / launch.service.as_secs_f64());
        ui.push(launch.ui);
        service.push(launch.service);
        common::delete_and_wait(chrome, &launch.session_id, LAUNCH).await;
        // The agent's next heartbeat gives the cores back to placement.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let (ui, service) = (median(ui), median(service));
    ratios.sort_by(f64::total_cmp);
    println!(
        "{label}: median click → page in frame {}, median request → running {}, ratio of the \
         medians {:.2}, median of the runs' ratios {:.2} (goal ≤ 1.2)",
        ms(ui),
        ms(service),
        ui.as_secs_f64() / service.as_secs_f64(),
        ratios[ratios.len() / 2]
    );
}

#[tokio::main]
async fn main() {
    let Some(programs) = browser_enabled("bench ui") else {
        panic!("the UI benchmark needs ATRIUM_TEST_CHROMIUM (scripts/bench-ui sets it)");
    };
    assert!(
        atrium_integration_tests::docker_enabled("bench ui"),
        "the UI benchmark needs Docker (ATRIUM_TEST_DOCKER=1)"
    );
    let gw = Gateway::start().await;
    let (workspace, demo) = common::demo(&gw).await;
    let user = common::user(&gw, "bench", &[]).await;

    println!("== launch from the dashboard, {DEMO_LAUNCHES} runs of the demo workspace");
    let chrome = Chrome::start(&programs, &gw.url).await;
    sign_in_to_dashboard(&chrome, &user.username, USER_PASSWORD).await;
    launches(
        &chrome,
        "demo",
        &demo,
        Ready::Text("Atrium demo workspace"),
        DEMO_LAUNCHES,
    )
    .await;
    println!("== first load of each page, fresh browser, empty cache (budget < 100,000 bytes)");
    let mut pages = pages::user_pages();
    pages.push(pages::launch_page(&workspace));
    let admin_pages = pages::admin_pages(&user.group_id);
    let as_user = (user.username.as_str(), USER_PASSWORD);
    let as_admin = ("admin", atrium_integration_tests::ADMIN_PASSWORD);
    for (page, login) in pages
        .iter()
        .map(|p| (p, as_user))
        .chain(admin_pages.iter().map(|p| (p, as_admin)))
    {
        let load = pages::first_load(&programs, &gw.url, page, login).await;
        let foreign = load.foreign(&gw.url);
        println!(
            "{:<10} {:>7} bytes transferred, {:>2} requests ({}); other hosts: {}",
            page.name,
            load.bytes(),
            load.requests.len(),
            load.kinds(),
            if foreign.is_empty() {
                "none".to_owned()
            } else {
                format!("{foreign:?}")
            }
        );
    }
    // The launch page's session holds cores the desktop needs.
    let (_, sessions) = chrome.fetch("GET", "/api/v1/sessions", None, false).await;
    for s in sessions["sessions"].as_array().cloned().unwrap_or_default() {
        let id = s["id"].as_str().unwrap_or_default();
        chrome
            .fetch("DELETE", &format!("/api/v1/sessions/{id}"), None, true)
            .await;
        common::wait_state(&chrome, id, "OBSERVED_STATE_DELETED", LAUNCH).await;
    }
    let desktop_present = Command::new("docker")
        .args(["image", "inspect", DESKTOP_IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if desktop_present {
        let admin = gw.sandbox.admin().expect("admin").clone();
        demo_workspace(gw.sandbox.running(), &admin, DESKTOP_IMAGE, 1.0, 2048)
            .await
            .expect("desktop workspace");
        println!(
            "== launch from the dashboard, {DESKTOP_LAUNCHES} runs of the desktop (noVNC connected)"
        );
        launches(
            &chrome,
            "desktop",
            DESKTOP_IMAGE,
            Ready::NoVncConnected,
            DESKTOP_LAUNCHES,
        )
        .await;
    } else {
        println!(
            "(no {DESKTOP_IMAGE}: `atrium image build-desktop` makes it; desktop launches skipped)"
        );
    }
    chrome.close().await;
}
