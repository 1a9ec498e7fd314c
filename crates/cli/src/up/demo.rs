//! What `atrium up` adds for a newcomer: the demo workspace image (built with Docker when it
//! is missing) and, on the first start, a workspace for it that every user may launch.
//!
//! Neither is required: without Docker the platform still starts (launching a session then
//! says why it cannot), and the workspace is created even when the image could not be built,
//! so building it later (`atrium image build-demo`) is all that is left to do.

use std::process::Output;
use std::time::Duration;

use anyhow::Context as _;
use atrium_launcher::{Caller, Running};
use atrium_proto::common::v1::PageRequest;
use atrium_proto::policy::v1::{CreateWorkspaceRequest, ListWorkspacesRequest, Workspace};
use atrium_workspace::{BinarySource, BuildOptions, DEFAULT_TAG, build_image};

/// The demo workspace's image.
pub const IMAGE: &str = DEFAULT_TAG;

/// The demo workspace's name in the catalogue.
pub const FRIENDLY_NAME: &str = "Demo workspace";

/// How long one `docker` query may take before Docker counts as not answering.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the demo image stands once `atrium up` has looked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemoImage {
    /// It was there already.
    Present,
    /// It was missing and was built now.
    Built,
    /// Not looked for (`--no-demo`).
    Skipped,
    /// It is missing and could not be built; why.
    Unavailable(String),
}

/// The same Docker engine the agent is told to use, through the `docker` CLI.
pub(super) async fn docker(docker_host: &str, args: &[&str]) -> Result<Output, String> {
    let run = tokio::process::Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", docker_host)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(DOCKER_TIMEOUT, run).await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("the docker CLI is not on PATH".into())
        }
        Ok(Err(e)) => Err(format!("the docker CLI could not be run: {e}")),
        Err(_) => Err(format!(
            "Docker at {docker_host} did not answer within {}s",
            DOCKER_TIMEOUT.as_secs()
        )),
    }
}

/// The last non-empty line of a command's stderr: what Docker says went wrong.
pub(super) fn last_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no reason given")
        .trim()
        .to_owned()
}

/// Whether the engine's address is the one a child `docker` (the image build) would use on
/// its own: the build inherits this process's environment, not `--docker-host`.
fn build_uses(docker_host: &str) -> bool {
    match std::env::var("DOCKER_HOST") {
        Ok(env) if !env.is_empty() => env == docker_host,
        _ => docker_host == super::DEFAULT_DOCKER_HOST,
    }
}

/// Makes sure the demo image exists on the agent's Docker engine: builds it when Docker
/// answers and it is missing (progress on stderr). Never fails `atrium up`: what went wrong
/// comes back as [`DemoImage::Unavailable`], already said in one line on stderr.
pub async fn ensure_image(docker_host: &str) -> DemoImage {
    let state = look_and_build(docker_host).await;
    if let DemoImage::Unavailable(why) = &state {
        eprintln!(
            "==> no demo image ({why}); starting anyway: sessions cannot launch until it exists"
        );
    }
    state
}

async fn look_and_build(docker_host: &str) -> DemoImage {
    let version = match docker(docker_host, &["version", "--format", "{{.Server.Version}}"]).await {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            return DemoImage::Unavailable(format!(
                "Docker at {docker_host} does not answer: {}",
                last_line(&output)
            ));
        }
        Err(why) => return DemoImage::Unavailable(why),
    };
    let inspect = docker(
        docker_host,
        &["image", "inspect", "--format", "{{.Id}}", IMAGE],
    )
    .await;
    if inspect.is_ok_and(|o| o.status.success()) {
        return DemoImage::Present;
    }
    if !build_uses(docker_host) {
        return DemoImage::Unavailable(format!(
            "{IMAGE} is missing; build it with `DOCKER_HOST={docker_host} atrium image build-demo`"
        ));
    }
    let Some(binary) = BinarySource::discover() else {
        return DemoImage::Unavailable(format!(
            "{IMAGE} is missing and there is no atrium-workspace binary to package (not run \
             from a source checkout, none beside atrium); see `atrium image build-demo --help`"
        ));
    };
    eprintln!(
        "==> Docker {} answers and {IMAGE} is missing: building it (once; compiling \
         atrium-workspace in release mode takes a few minutes the first time)",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    let options = BuildOptions::new(IMAGE, binary);
    // Docker and cargo run as child processes and are waited for: keep that off the runtime.
    let built = tokio::task::spawn_blocking(move || {
        build_image(&options, &mut |line| eprintln!("==> {line}"))
    })
    .await;
    match built {
        Ok(Ok(image)) => {
            eprintln!("==> built {} ({})", image.tag, image.id);
            DemoImage::Built
        }
        Ok(Err(e)) => DemoImage::Unavailable(format!("building {IMAGE} failed: {e}")),
        Err(e) => DemoImage::Unavailable(format!("building {IMAGE} failed: {e}")),
    }
}

/// The demo workspace as created: every user may launch it (All Users).
pub fn workspace() -> Workspace {
    Workspace {
        name: IMAGE.into(),
        friendly_name: FRIENDLY_NAME.into(),
        description: "Atrium's demo workspace: a small HTTPS page that shows who and where it \
                      runs, with a notes box saved in your home."
            .into(),
        categories: vec!["Demo".into()],
        enabled: true,
        cores: 0.5,
        memory_mib: 256,
        ..Default::default()
    }
}

/// What became of the demo workspace (or the desktop's).
#[derive(Debug, Clone)]
pub enum DemoWorkspace {
    Created(Workspace),
    /// One with the demo image was there already (its friendly name).
    Existing(Workspace),
}

/// Creates the demo workspace in policy as the administrator, assigned to All Users, unless a
/// workspace with the demo image exists already.
pub async fn create_workspace(running: &Running) -> anyhow::Result<DemoWorkspace> {
    ensure_workspace(running, workspace()).await
}

/// Creates `wanted` in policy as the administrator, assigned to All Users, unless a workspace
/// with its image (its `name`) exists already.
pub(super) async fn ensure_workspace(
    running: &Running,
    wanted: Workspace,
) -> anyhow::Result<DemoWorkspace> {
    let admin = running.admin().await?;
    let mut policy = running.policy(&Caller::User(admin)).await?;
    let mut page_token = String::new();
    loop {
        let answer = policy
            .list_workspaces(ListWorkspacesRequest {
                page: Some(PageRequest {
                    page_size: 200,
                    page_token: page_token.clone(),
                }),
                include_disabled: true,
            })
            .await
            .context("list the workspaces")?
            .into_inner();
        if let Some(existing) = answer
            .workspaces
            .into_iter()
            .find(|w| w.name == wanted.name)
        {
            return Ok(DemoWorkspace::Existing(existing));
        }
        match answer.page.map(|p| p.next_page_token) {
            Some(next) if !next.is_empty() => page_token = next,
            _ => break,
        }
    }
    let what = format!("create the workspace {:?}", wanted.friendly_name);
    let created = policy
        .create_workspace(CreateWorkspaceRequest {
            workspace: Some(wanted),
            assign_to_all_users: Some(true),
        })
        .await
        .context(what)?
        .into_inner();
    Ok(DemoWorkspace::Created(created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_workspace_is_small_enabled_and_uses_the_demo_image() {
        let w = workspace();
        assert_eq!(w.name, "atrium/workspace-demo:latest");
        assert_eq!(w.friendly_name, FRIENDLY_NAME);
        assert!(w.enabled && !w.hidden);
        assert!(w.cores > 0.0 && w.cores <= 1.0);
        assert!(w.memory_mib > 0 && w.memory_mib <= 512);
        assert!(!w.categories.is_empty() && !w.description.is_empty());
    }
}
