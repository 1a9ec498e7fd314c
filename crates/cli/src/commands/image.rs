//! `atrium image build-demo`: packages the demo workspace (`atrium-workspace`) into a
//! `FROM scratch` image with its shared libraries, so Atrium has a workspace image without any
//! registry. The work is done by [`atrium_workspace::build_image`]; this only picks the binary
//! and prints.
//!
//! `atrium image build-desktop`: a real desktop (Xvnc, JWM, xterm, noVNC) from Debian packages
//! alone, built by [`atrium_desktop::build_image`] and reused while its recipe is unchanged.

use std::path::PathBuf;

use anyhow::Context as _;
use atrium_workspace::{BinarySource, BuildOptions, BuiltImage, DEFAULT_TAG, build_image};
use clap::Subcommand;
use serde_json::json;

use crate::error::{CliError, CliResult};
use crate::output::{Format, print_fields, print_json};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the demo workspace image (HTTPS on 6901, basic auth kasm_user:$VNC_PW) with
    /// Docker, from scratch: no registry needed.
    BuildDemo(BuildDemoArgs),
    /// Build the desktop workspace image from Debian packages (debootstrap + docker import;
    /// needs root, debootstrap and a Debian mirror, no registry): Xvnc, JWM, xterm and noVNC
    /// on 6901 with basic auth kasm_user:$VNC_PW. Skipped when an image of the same recipe
    /// exists.
    BuildDesktop(BuildDesktopArgs),
}

#[derive(Debug, clap::Args)]
pub struct BuildDesktopArgs {
    /// The image's tag.
    #[arg(long, default_value = atrium_desktop::DEFAULT_TAG)]
    pub tag: String,
    /// Add Firefox ESR (about 370 MB more).
    #[arg(long)]
    pub with_browser: bool,
    /// The Debian release to build from [default: this machine's, from /etc/os-release].
    #[arg(long)]
    pub suite: Option<String>,
    /// The Debian mirror.
    #[arg(long, default_value = atrium_desktop::Recipe::DEFAULT_MIRROR)]
    pub mirror: String,
    /// The Debian security mirror (its `<suite>-security` suite is added and upgraded from).
    #[arg(long, default_value = atrium_desktop::Recipe::DEFAULT_SECURITY_MIRROR)]
    pub security_mirror: String,
    /// Build even if an image of this recipe exists, e.g. to take newer security updates.
    #[arg(long)]
    pub rebuild: bool,
    /// Where debootstrap's and apt's downloads are kept for the next build.
    #[arg(long, value_name = "DIR", default_value = atrium_desktop::DEFAULT_CACHE_DIR)]
    pub cache_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct BuildDemoArgs {
    /// The image's tag.
    #[arg(long, default_value = DEFAULT_TAG)]
    pub tag: String,
    /// Package this atrium-workspace binary [default: build it with cargo when run from a
    /// source checkout, else the one beside `atrium`].
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

pub async fn run(format: Format, command: ImageCommand) -> CliResult {
    match command {
        ImageCommand::BuildDemo(args) => build_demo(format, args).await,
        ImageCommand::BuildDesktop(args) => build_desktop(format, args).await,
    }
}

async fn build_demo(format: Format, args: BuildDemoArgs) -> CliResult {
    let binary = match args.binary {
        Some(path) => BinarySource::Prebuilt(path),
        None => BinarySource::discover().ok_or_else(|| {
            CliError::Usage(
                "no atrium-workspace binary: this atrium was not built from a source checkout \
                 that still exists, and none lies beside it; pass --binary PATH"
                    .into(),
            )
        })?,
    };
    let options = BuildOptions::new(args.tag, binary);
    // Docker and cargo are run as child processes and waited for: keep that off the runtime.
    let built = tokio::task::spawn_blocking(move || {
        build_image(&options, &mut |line| eprintln!("==> {line}"))
    })
    .await
    .context("join the image build")?
    .context("build the demo image")?;
    match format {
        Format::Json => print_json(&built_json(&built)),
        Format::Table => {
            print_fields(&[
                ("tag", built.tag.clone()),
                ("id", built.id.clone()),
                (
                    "size",
                    format!("{:.1} MiB", built.size_bytes as f64 / 1048576.0),
                ),
                ("libraries", built.libraries.len().to_string()),
            ]);
            println!("\nrun it:");
            println!(
                "  docker run -d -p 6901:6901 -e VNC_PW=secret {}",
                built.tag
            );
            println!("  curl -k -u kasm_user:secret https://127.0.0.1:6901/");
        }
    }
    Ok(())
}

async fn build_desktop(format: Format, args: BuildDesktopArgs) -> CliResult {
    let options = atrium_desktop::BuildOptions {
        suite: args.suite,
        mirror: args.mirror,
        security_mirror: args.security_mirror,
        with_browser: args.with_browser,
        rebuild: args.rebuild,
        cache_dir: Some(args.cache_dir),
        ..atrium_desktop::BuildOptions::new(args.tag)
    };
    // debootstrap, apt and docker run as child processes and are waited for: off the runtime.
    let built = tokio::task::spawn_blocking(move || {
        atrium_desktop::build_image(&options, &mut |line| eprintln!("==> {line}"))
    })
    .await
    .context("join the image build")?
    .context("build the desktop image")?;
    match format {
        Format::Json => print_json(&json!({
            "tag": built.tag,
            "id": built.id,
            "size_bytes": built.size_bytes,
            "recipe_hash": built.recipe_hash,
            "suite": built.suite,
            "with_browser": built.with_browser,
            "cached": built.cached,
        })),
        Format::Table => {
            print_fields(&[
                ("tag", built.tag.clone()),
                ("id", built.id.clone()),
                (
                    "size",
                    format!("{:.1} MiB", built.size_bytes as f64 / 1048576.0),
                ),
                ("recipe", built.recipe_hash.clone()),
                ("debian", built.suite.clone()),
                (
                    "browser",
                    if built.with_browser { "yes" } else { "no" }.into(),
                ),
                (
                    "built",
                    if built.cached {
                        "no: an image of this recipe existed"
                    } else {
                        "now"
                    }
                    .into(),
                ),
            ]);
            println!("\nrun it:");
            println!(
                "  docker run -d --shm-size=512m -p 127.0.0.1:6901:6901 -e VNC_PW=secret {}",
                built.tag
            );
            println!("  open https://127.0.0.1:6901/ and log in as kasm_user / secret");
        }
    }
    Ok(())
}

fn built_json(built: &BuiltImage) -> serde_json::Value {
    json!({
        "tag": built.tag,
        "id": built.id,
        "size_bytes": built.size_bytes,
        "binary": built.binary,
        "libraries": built.libraries,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn build_demo_has_the_default_tag_and_takes_a_binary() {
        let cli = Cli::try_parse_from(["atrium", "image", "build-demo"]).expect("parse");
        let Command::Image(ImageCommand::BuildDemo(args)) = cli.command else {
            panic!("expected image build-demo");
        };
        assert_eq!(args.tag, "atrium/workspace-demo:latest");
        assert_eq!(args.binary, None);

        let cli = Cli::try_parse_from([
            "atrium",
            "image",
            "build-demo",
            "--tag",
            "demo:1",
            "--binary",
            "/tmp/aw",
        ])
        .expect("parse");
        let Command::Image(ImageCommand::BuildDemo(args)) = cli.command else {
            panic!("expected image build-demo");
        };
        assert_eq!(args.tag, "demo:1");
        assert_eq!(args.binary, Some(PathBuf::from("/tmp/aw")));
    }

    #[test]
    fn build_desktop_defaults_to_this_machine_without_a_browser() {
        let cli = Cli::try_parse_from(["atrium", "image", "build-desktop"]).expect("parse");
        let Command::Image(ImageCommand::BuildDesktop(args)) = cli.command else {
            panic!("expected image build-desktop");
        };
        assert_eq!(args.tag, "atrium/workspace-desktop:latest");
        assert!(!args.with_browser && !args.rebuild);
        assert_eq!(args.suite, None);
        assert_eq!(args.mirror, "http://deb.debian.org/debian");

        let cli = Cli::try_parse_from([
            "atrium",
            "image",
            "build-desktop",
            "--with-browser",
            "--suite",
            "trixie",
            "--rebuild",
        ])
        .expect("parse");
        let Command::Image(ImageCommand::BuildDesktop(args)) = cli.command else {
            panic!("expected image build-desktop");
        };
        assert!(args.with_browser && args.rebuild);
        assert_eq!(args.suite.as_deref(), Some("trixie"));
    }
}
