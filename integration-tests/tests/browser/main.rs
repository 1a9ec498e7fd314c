//! The gateway in real headless Chromium (WebDriver through chromedriver): what a person's
//! browser does with cookies, CSRF and session URLs, and the browser UI end to end.
//!
//! The stack is the gateway tests' own (`tests/gateway/common.rs`, shared by path): every role
//! in this process, the gateway on plain HTTP on loopback. Skipped without
//! `ATRIUM_TEST_CHROMIUM` outside CI (see `driver.rs`).

#[allow(dead_code)] // the gateway tests' stack; this binary uses part of it
#[path = "../gateway/common.rs"]
mod stack;

mod admin;
mod api;
mod common;
mod desktop;
mod driver;
mod flows;
mod pages;
mod screenshots;
mod totp;
mod ui;
