//! Packaging the server into a `FROM scratch` image: find (or build) the binary, collect its
//! shared libraries with `ldd`, write a build context with a Dockerfile, and run
//! `docker build`. Shells out to `cargo`, `ldd` and the `docker` CLI; needs no registry.

use std::collections::VecDeque;
use std::io::{self, BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::libs::shared_libraries;

/// The tag `atrium image build-demo` gives the image.
pub const DEFAULT_TAG: &str = "atrium/workspace-demo:latest";

/// The label every demo image carries, as `key=value`.
pub const DEMO_LABEL: &str = "atrium.demo=1";

/// The binary's name, in the target directory and at the image's root.
pub const BINARY_NAME: &str = "atrium-workspace";

const DOCKERFILE: &str = r#"# Written by `atrium image build-demo`: the atrium-workspace binary and the shared libraries
# (and dynamic loader) ldd found for it, at the paths they have on the build machine.
FROM scratch
COPY rootfs/ /
COPY --chown=1000:1000 home/ /home/
ENV HOME=/home/kasm-user
LABEL atrium.demo="1" \
      org.opencontainers.image.title="Atrium demo workspace" \
      org.opencontainers.image.description="HTTPS on 6901, basic auth kasm_user:$VNC_PW, a page and a notes box"
USER 1000:1000
WORKDIR /home/kasm-user
EXPOSE 6901
ENTRYPOINT ["/atrium-workspace"]
"#;

/// Where the `atrium-workspace` binary comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinarySource {
    /// Use this file as it is.
    Prebuilt(PathBuf),
    /// Run `cargo build --release -p atrium-workspace` in this workspace.
    Cargo { workspace_root: PathBuf },
}

impl BinarySource {
    /// Builds from the source checkout this crate was compiled in, if it is still there;
    /// else uses an `atrium-workspace` beside the running executable, if there is one.
    pub fn discover() -> Option<Self> {
        if let Some(root) = source_checkout() {
            return Some(Self::Cargo {
                workspace_root: root,
            });
        }
        let exe = std::env::current_exe().ok()?;
        let beside = exe.parent()?.join(BINARY_NAME);
        beside.is_file().then_some(Self::Prebuilt(beside))
    }
}

/// The source checkout this crate was compiled in, when it still exists.
pub fn source_checkout() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.parent()?;
    let looks_right =
        root.join("Cargo.toml").is_file() && root.join("images/workspace/src/main.rs").is_file();
    looks_right.then(|| root.to_path_buf())
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub tag: String,
    pub binary: BinarySource,
    /// The Docker CLI to run (`docker` on `PATH` by default).
    pub docker: PathBuf,
}

impl BuildOptions {
    pub fn new(tag: impl Into<String>, binary: BinarySource) -> Self {
        Self {
            tag: tag.into(),
            binary,
            docker: PathBuf::from("docker"),
        }
    }
}

/// What was built.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub tag: String,
    /// `sha256:…`
    pub id: String,
    /// The image's size as Docker reports it.
    pub size_bytes: u64,
    /// The binary that went in.
    pub binary: PathBuf,
    /// The libraries that went in, loader included.
    pub libraries: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the docker CLI could not be run ({0}); install Docker or put `docker` on PATH")]
    DockerMissing(io::Error),
    #[error("Docker is not reachable: {0}")]
    DockerUnreachable(String),
    #[error("cargo build of atrium-workspace failed: {0}")]
    Cargo(String),
    #[error("the atrium-workspace binary {0} does not exist")]
    BinaryNotFound(PathBuf),
    #[error("{0}")]
    Ldd(String),
    #[error("the binary needs libraries ldd could not find: {}", .0.join(", "))]
    MissingLibraries(Vec<String>),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("docker build failed ({status}); its last lines:\n{tail}")]
    DockerBuild { status: String, tail: String },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// Builds the demo image; `progress` gets one line per step (and Docker's output).
pub fn build_image(
    options: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<BuiltImage, BuildError> {
    let version = docker_server_version(&options.docker)?;
    progress(&format!("docker server {version} is reachable"));

    let binary = match &options.binary {
        BinarySource::Prebuilt(path) => path.clone(),
        BinarySource::Cargo { workspace_root } => {
            progress(&format!(
                "building {BINARY_NAME} (cargo build --release) in {}",
                workspace_root.display()
            ));
            cargo_build(workspace_root)?
        }
    };
    if !binary.is_file() {
        return Err(BuildError::BinaryNotFound(binary));
    }
    progress(&format!("binary: {}", binary.display()));

    let libs = shared_libraries(&binary)?;
    if !libs.missing.is_empty() {
        return Err(BuildError::MissingLibraries(libs.missing));
    }
    for lib in &libs.found {
        progress(&format!("library: {}", lib.display()));
    }

    let work = tempfile::Builder::new()
        .prefix("atrium-image-")
        .tempdir()
        .map_err(io_error("create a temporary directory"))?;
    let context = work.path().join("context");
    write_context(&context, &binary, &libs.found)?;
    progress(&format!(
        "build context written to {}; running docker build",
        context.display()
    ));

    let iid_file = work.path().join("image-id");
    docker_build(options, &context, &iid_file, progress)?;
    let id = std::fs::read_to_string(&iid_file)
        .map_err(io_error("read the image id docker wrote"))?
        .trim()
        .to_owned();
    let size_bytes = docker_image_size(&options.docker, &options.tag)?;
    Ok(BuiltImage {
        tag: options.tag.clone(),
        id,
        size_bytes,
        binary,
        libraries: libs.found,
    })
}

/// Writes `Dockerfile`, `rootfs/` (binary and libraries at their paths) and an empty
/// `home/kasm-user/` (copied with owner 1000 so the home is writable).
pub fn write_context(dir: &Path, binary: &Path, libraries: &[PathBuf]) -> Result<(), BuildError> {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(io_error("create the build context"))?;
    copy_file(binary, &rootfs.join(BINARY_NAME))?;
    for lib in libraries {
        let relative = lib.strip_prefix("/").unwrap_or(lib);
        let dest = rootfs.join(relative);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io_error(format!("create {}", parent.display())))?;
        }
        // Follows symlinks: the image gets the library's content at the path ldd named.
        copy_file(lib, &dest)?;
    }
    std::fs::create_dir_all(dir.join("home/kasm-user"))
        .map_err(io_error("create the home directory in the build context"))?;
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).map_err(io_error("write the Dockerfile"))
}

fn copy_file(from: &Path, to: &Path) -> Result<(), BuildError> {
    std::fs::copy(from, to).map(drop).map_err(io_error(format!(
        "copy {} to the build context",
        from.display()
    )))
}

fn docker_server_version(docker: &Path) -> Result<String, BuildError> {
    let output = Command::new(docker)
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output()
        .map_err(BuildError::DockerMissing)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("`docker version` failed")
            .trim()
            .to_owned();
        return Err(BuildError::DockerUnreachable(reason));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn cargo_build(workspace_root: &Path) -> Result<PathBuf, BuildError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Cargo's own progress goes to the terminal (stderr); stdout carries JSON messages, one of
    // which names the executable wherever the target directory is.
    let output = Command::new(cargo)
        .current_dir(workspace_root)
        .args([
            "build",
            "--release",
            "-p",
            "atrium-workspace",
            "--bin",
            BINARY_NAME,
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| BuildError::Cargo(format!("run cargo: {e}")))?;
    if !output.status.success() {
        return Err(BuildError::Cargo(format!(
            "cargo exited with {} (its errors are above)",
            output.status
        )));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == BINARY_NAME)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| BuildError::Cargo("cargo did not name the built executable".into()))
}

fn docker_build(
    options: &BuildOptions,
    context: &Path,
    iid_file: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<(), BuildError> {
    let mut child = Command::new(&options.docker)
        .arg("build")
        .arg("--tag")
        .arg(&options.tag)
        .arg("--iidfile")
        .arg(iid_file)
        .arg(context)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(BuildError::DockerMissing)?;
    // Docker's classic builder writes steps to stdout and BuildKit to stderr: forward both.
    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);
    let mut tail = VecDeque::with_capacity(20);
    for line in rx {
        progress(&format!("docker: {line}"));
        if tail.len() == 20 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child.wait().map_err(io_error("wait for docker build"))?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::DockerBuild {
            status: status.to_string(),
            tail: Vec::from(tail).join("\n"),
        })
    }
}

fn docker_image_size(docker: &Path, tag: &str) -> Result<u64, BuildError> {
    let output = Command::new(docker)
        .args(["image", "inspect", "--format", "{{.Size}}", tag])
        .stdin(Stdio::null())
        .output()
        .map_err(BuildError::DockerMissing)?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim().parse().map_err(|_| {
        BuildError::DockerUnreachable(format!(
            "docker image inspect {tag} answered {:?}: {}",
            text.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_holds_binary_libraries_home_and_dockerfile() {
        let src = tempfile::tempdir().expect("tempdir");
        let binary = src.path().join("bin");
        let lib = src.path().join("lib/x86_64-linux-gnu/libc.so.6");
        std::fs::create_dir_all(lib.parent().expect("parent")).expect("mkdir");
        std::fs::write(&binary, b"elf").expect("write");
        std::fs::write(&lib, b"libc").expect("write");
        let ctx = tempfile::tempdir().expect("tempdir");

        write_context(ctx.path(), &binary, std::slice::from_ref(&lib)).expect("context");

        let rootfs = ctx.path().join("rootfs");
        assert_eq!(
            std::fs::read(rootfs.join("atrium-workspace")).expect("binary"),
            b"elf"
        );
        let lib_in_image = rootfs.join(lib.strip_prefix("/").expect("absolute"));
        assert_eq!(std::fs::read(lib_in_image).expect("lib"), b"libc");
        assert!(ctx.path().join("home/kasm-user").is_dir());
        let dockerfile = std::fs::read_to_string(ctx.path().join("Dockerfile")).expect("read");
        for line in [
            "FROM scratch",
            "COPY --chown=1000:1000 home/ /home/",
            "USER 1000:1000",
            "ENV HOME=/home/kasm-user",
            "EXPOSE 6901",
            "ENTRYPOINT [\"/atrium-workspace\"]",
            "LABEL atrium.demo=\"1\"",
        ] {
            assert!(dockerfile.contains(line), "Dockerfile lacks {line:?}");
        }
    }

    #[test]
    fn this_checkout_is_found() {
        let root = source_checkout().expect("tests run from a checkout");
        assert!(root.join("images/workspace/Cargo.toml").is_file());
    }
}
