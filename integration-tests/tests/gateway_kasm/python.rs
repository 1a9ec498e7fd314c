//! The third-party Python client `kasm` (PyPI, Codoc-os/pykasm) drives a whole lifecycle
//! against the gateway: integration-tests/kasm/lifecycle.py.
//!
//! The interpreter: `ATRIUM_TEST_KASM_CLIENT` (a Python with `kasm==1.18.1.0` installed; the
//! test fails when it is set and does not work), else the first of
//! `target/kasm-venv/bin/python` and `/tmp/kasmvenv/bin/python` that exists; with neither, the
//! test is skipped, saying so.

use std::path::{Path, PathBuf};

use atrium_integration_tests::{demo_image, demo_workspace};

use crate::common::Gateway;
use crate::{FULL, api_key, docker};

fn interpreter() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ATRIUM_TEST_KASM_CLIENT").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    [
        root.join("target/kasm-venv/bin/python"),
        PathBuf::from("/tmp/kasmvenv/bin/python"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

#[tokio::test]
async fn the_kasm_python_client_runs_a_whole_lifecycle() {
    if !docker("the_kasm_python_client_runs_a_whole_lifecycle") {
        return;
    }
    let Some(python) = interpreter() else {
        eprintln!(
            "SKIPPED the_kasm_python_client_runs_a_whole_lifecycle: no Python with the `kasm` \
             client (set ATRIUM_TEST_KASM_CLIENT to one, e.g. after `python3 -m venv \
             target/kasm-venv && target/kasm-venv/bin/pip install kasm==1.18.1.0`)"
        );
        return;
    };
    let gw = Gateway::start().await;
    let admin = gw.sandbox.admin().expect("admin").clone();
    let image = demo_image().expect("demo image");
    let workspace = demo_workspace(gw.sandbox.running(), &admin, &image, 0.25, 128)
        .await
        .expect("workspace");
    let key = api_key(&gw, "pykasm", false, FULL, None).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("kasm/lifecycle.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .env("KASM_BASE_URL", &gw.url)
        .env("KASM_API_KEY", &key.id)
        .env("KASM_API_KEY_SECRET", &key.secret)
        .env("KASM_IMAGE_ID", &workspace)
        .env("KASM_POLL_TIMEOUT", "120")
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("LIFECYCLE OK"),
        "the kasm client's lifecycle failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    gw.sandbox.stop().await.expect("stop");
}
