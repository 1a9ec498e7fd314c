//! The desktop workspace in `atrium up`: when the desktop image (`atrium image build-desktop`)
//! is on the agent's Docker engine, the start that creates the administrator also puts a
//! "Desktop" workspace in the catalogue for All Users, beside the demo. The image is built only
//! with `--desktop`: that needs root, debootstrap and a few minutes, so it is the operator's
//! call.

use atrium_proto::policy::v1::Workspace;

use super::demo::docker;

/// The desktop workspace's image.
pub const IMAGE: &str = atrium_desktop::DEFAULT_TAG;

/// The desktop workspace's name in the catalogue.
pub const FRIENDLY_NAME: &str = "Desktop";

/// Where the desktop image stands once `atrium up` has looked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesktopImage {
    Present,
    /// Docker answered and the image is not there.
    Missing,
    /// Not looked for (`--no-demo`), or Docker did not answer.
    Unknown,
}

/// Whether the agent's Docker engine has the desktop image; never fails `atrium up`.
pub async fn look(docker_host: &str) -> DesktopImage {
    match docker(
        docker_host,
        &["image", "inspect", "--format", "{{.Id}}", IMAGE],
    )
    .await
    {
        Ok(output) if output.status.success() => DesktopImage::Present,
        Ok(output) if String::from_utf8_lossy(&output.stderr).contains("No such image") => {
            DesktopImage::Missing
        }
        _ => DesktopImage::Unknown,
    }
}

/// Builds the desktop image (`atrium up --desktop`), printing progress; a failure is said
/// and `atrium up` goes on without the desktop.
pub async fn build() -> DesktopImage {
    eprintln!("==> building the desktop image {IMAGE} (a few minutes the first time)");
    install_debootstrap().await;
    let options = atrium_desktop::BuildOptions::new(IMAGE.to_owned());
    let built = tokio::task::spawn_blocking(move || {
        atrium_desktop::build_image(&options, &mut |line| eprintln!("==> {line}"))
    })
    .await;
    match built {
        Ok(Ok(_)) => DesktopImage::Present,
        Ok(Err(e)) => {
            eprintln!("==> the desktop image was not built: {e:#}");
            DesktopImage::Missing
        }
        Err(e) => {
            eprintln!("==> the desktop image was not built: {e}");
            DesktopImage::Missing
        }
    }
}

/// As root on a machine with apt-get and without debootstrap, installs Debian's package (the
/// one thing the build needs that a fresh Debian machine lacks), saying so. Otherwise leaves
/// it to the build to say what is missing.
async fn install_debootstrap() {
    let have = |program: &str| atrium_desktop::which(program).is_some();
    let root = atrium_desktop::effective_uid().is_ok_and(|uid| uid == 0);
    if have("debootstrap") || !root || !have("apt-get") {
        return;
    }
    eprintln!("==> installing debootstrap with apt-get (the desktop image is built with it)");
    let installed = tokio::process::Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "debootstrap",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .await;
    match installed {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("==> apt-get install debootstrap failed ({status})"),
        Err(e) => eprintln!("==> apt-get could not run: {e}"),
    }
}

/// The desktop workspace as created: every user may launch it (All Users).
pub fn workspace() -> Workspace {
    Workspace {
        name: IMAGE.into(),
        friendly_name: FRIENDLY_NAME.into(),
        description: "A Debian desktop in your browser: the JWM window manager and a terminal, \
                      through noVNC."
            .into(),
        categories: vec!["Desktop".into()],
        enabled: true,
        cores: 1.0,
        memory_mib: 1536,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_desktop_workspace_uses_the_desktop_image() {
        let w = workspace();
        assert_eq!(w.name, "atrium/workspace-desktop:latest");
        assert_eq!(w.friendly_name, "Desktop");
        assert!(w.enabled && !w.hidden);
        assert!(w.cores >= 1.0 && w.memory_mib >= 1024);
        assert!(!w.categories.is_empty() && !w.description.is_empty());
    }
}
