//! Running the recipe: check Docker, work out the recipe and its hash, reuse an image that
//! carries the hash, else check root and debootstrap, write the embedded recipe to a temporary
//! directory and run its `build.sh`, forwarding every line as progress.

use std::collections::VecDeque;
use std::io::{self, BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::recipe::{self, DESKTOP_LABEL, FILES, RECIPE_LABEL, Recipe};

/// Where debootstrap's and apt's downloads are kept between builds.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/atrium/desktop";

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub tag: String,
    /// The Debian release; `None`: this machine's (from /etc/os-release).
    pub suite: Option<String>,
    pub mirror: String,
    pub security_mirror: String,
    pub with_browser: bool,
    /// Build even when an image with the recipe's hash exists (e.g. for newer security
    /// updates).
    pub rebuild: bool,
    /// Downloads kept between builds; `None` for none.
    pub cache_dir: Option<PathBuf>,
    /// The Docker CLI to run (`docker` on `PATH` by default).
    pub docker: PathBuf,
}

impl BuildOptions {
    pub fn new(tag: impl Into<String>) -> Self {
        Self {
            tag: tag.into(),
            suite: None,
            mirror: Recipe::DEFAULT_MIRROR.into(),
            security_mirror: Recipe::DEFAULT_SECURITY_MIRROR.into(),
            with_browser: false,
            rebuild: false,
            cache_dir: Some(PathBuf::from(DEFAULT_CACHE_DIR)),
            docker: PathBuf::from("docker"),
        }
    }
}

/// What was built, or found.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub tag: String,
    /// `sha256:…`
    pub id: String,
    pub size_bytes: u64,
    /// The recipe's hash, also the image's `atrium.desktop.recipe` label.
    pub recipe_hash: String,
    pub suite: String,
    pub with_browser: bool,
    /// An image with this recipe's hash was there already: nothing was built.
    pub cached: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the docker CLI could not be run ({0}); install Docker or put `docker` on PATH")]
    DockerMissing(io::Error),
    #[error("Docker is not reachable: {0}")]
    DockerUnreachable(String),
    #[error("{0}")]
    Suite(String),
    #[error(
        "building the desktop image runs debootstrap and chroot, which need root: run it as \
         root (e.g. `sudo atrium image build-desktop`)"
    )]
    NotRoot,
    #[error("debootstrap is not installed: `apt-get install debootstrap` (a Debian package)")]
    DebootstrapMissing,
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("the recipe's build.sh failed ({status}); its last lines:\n{tail}")]
    Recipe { status: String, tail: String },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// Builds the desktop image, or finds the one this recipe already made; `progress` gets one
/// line per step (and the recipe's own output).
pub fn build_image(
    options: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<BuiltImage, BuildError> {
    let version = docker_text(
        &options.docker,
        &["version", "--format", "{{.Server.Version}}"],
    )?;
    progress(&format!("docker server {version} is reachable"));

    let suite = match &options.suite {
        Some(suite) => suite.clone(),
        None => {
            let text = std::fs::read_to_string("/etc/os-release")
                .map_err(io_error("read /etc/os-release (or pass --suite)"))?;
            recipe::debian_suite(&text).map_err(BuildError::Suite)?
        }
    };
    let recipe = Recipe {
        suite,
        mirror: options.mirror.clone(),
        security_mirror: options.security_mirror.clone(),
        with_browser: options.with_browser,
    };
    let hash = recipe.hash();
    progress(&format!(
        "recipe {} (debian {}, browser: {})",
        &hash[..12],
        recipe.suite,
        if recipe.with_browser { "yes" } else { "no" }
    ));

    if !options.rebuild
        && let Some(id) = image_with_hash(&options.docker, &hash)?
    {
        docker_text(&options.docker, &["tag", &id, &options.tag])?;
        progress(&format!(
            "an image of this recipe exists ({}): tagged {}, nothing to build",
            short(&id),
            options.tag
        ));
        return finish(options, recipe, hash, true);
    }

    if effective_uid()? != 0 {
        return Err(BuildError::NotRoot);
    }
    let debootstrap = which("debootstrap").ok_or(BuildError::DebootstrapMissing)?;
    progress(&format!("debootstrap: {}", debootstrap.display()));

    let work = tempfile::Builder::new()
        .prefix("atrium-desktop-recipe-")
        .tempdir()
        .map_err(io_error("create a temporary directory"))?;
    write_recipe(work.path())?;
    progress(&format!(
        "building {} from the recipe in {} (debootstrap and apt download about 100 MB the \
         first time)",
        options.tag,
        work.path().display()
    ));
    let mut command = Command::new("bash");
    command
        .arg(work.path().join("build.sh"))
        .args(recipe.build_args(&options.tag, options.cache_dir.as_deref()));
    if let Some(dir) = options
        .docker
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        // The recipe runs `docker` by name: put the chosen CLI first on its PATH.
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        if let Ok(joined) = std::env::join_paths(dirs) {
            command.env("PATH", joined);
        }
    }
    run_streaming(command, progress)?;
    // The image this tag named before is untagged now: remove such leftovers of earlier
    // recipes (only untagged desktop images; a container still using one keeps it).
    let filter = format!("label={DESKTOP_LABEL}");
    match docker_text(
        &options.docker,
        &["image", "prune", "--force", "--filter", &filter],
    ) {
        Ok(answer) => {
            if let Some(line) = answer.lines().find(|l| l.starts_with("Total reclaimed")) {
                progress(&format!("untagged desktop images removed: {line}"));
            }
        }
        Err(e) => progress(&format!("could not remove untagged desktop images: {e}")),
    }
    finish(options, recipe, hash, false)
}

fn finish(
    options: &BuildOptions,
    recipe: Recipe,
    recipe_hash: String,
    cached: bool,
) -> Result<BuiltImage, BuildError> {
    let inspect = docker_text(
        &options.docker,
        &[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.Size}}",
            &options.tag,
        ],
    )?;
    let (id, size) = inspect.split_once(' ').unwrap_or((inspect.as_str(), ""));
    let size_bytes = size.trim().parse().map_err(|_| {
        BuildError::DockerUnreachable(format!(
            "docker image inspect {} answered {inspect:?}",
            options.tag
        ))
    })?;
    Ok(BuiltImage {
        tag: options.tag.clone(),
        id: id.to_owned(),
        size_bytes,
        recipe_hash,
        suite: recipe.suite,
        with_browser: recipe.with_browser,
        cached,
    })
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// The newest image labelled with this recipe hash, if any.
fn image_with_hash(docker: &Path, hash: &str) -> Result<Option<String>, BuildError> {
    let filter = format!("label={RECIPE_LABEL}={hash}");
    let ids = docker_text(
        docker,
        &["image", "ls", "--quiet", "--no-trunc", "--filter", &filter],
    )?;
    Ok(ids
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned))
}

/// Writes the embedded recipe files into `dir` with their modes.
pub fn write_recipe(dir: &Path) -> Result<(), BuildError> {
    for (name, content, mode) in FILES {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(io_error(format!("write {}", path.display())))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
            .map_err(io_error(format!("chmod {}", path.display())))?;
    }
    Ok(())
}

/// The effective uid, from /proc/self/status (`Uid: real effective saved fs`).
pub fn effective_uid() -> Result<u32, BuildError> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(io_error(
        "read /proc/self/status to learn the effective uid",
    ))?;
    parse_effective_uid(&status).ok_or_else(|| BuildError::Io {
        what: "read /proc/self/status".into(),
        source: io::Error::new(io::ErrorKind::InvalidData, "no Uid line"),
    })
}

fn parse_effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// `name` on PATH or in the sbin directories a non-login root shell may lack.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs `docker ARGS` and returns its trimmed stdout, or why it failed.
fn docker_text(docker: &Path, args: &[&str]) -> Result<String, BuildError> {
    let output = Command::new(docker)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(BuildError::DockerMissing)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no reason given")
            .trim()
            .to_owned();
        return Err(BuildError::DockerUnreachable(format!(
            "`docker {}` failed: {reason}",
            args.first().copied().unwrap_or_default()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Runs `command`, forwarding stdout and stderr line by line; on failure, the last 30 lines.
fn run_streaming(mut command: Command, progress: &mut dyn FnMut(&str)) -> Result<(), BuildError> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_error("run bash (the recipe is a bash script)"))?;
    let (tx, rx) = mpsc::channel::<String>();
    let streams: Vec<Box<dyn io::Read + Send>> = [
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
    .collect();
    let readers: Vec<_> = streams
        .into_iter()
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
    let mut tail = VecDeque::with_capacity(30);
    for line in rx {
        progress(&line);
        if tail.len() == 30 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child.wait().map_err(io_error("wait for the recipe"))?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::Recipe {
            status: status.to_string(),
            tail: Vec::from(tail).join("\n"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_uid_is_the_second_field() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(parse_effective_uid(status), Some(0));
        assert_eq!(parse_effective_uid("Name:\tx\n"), None);
    }

    #[test]
    fn the_recipe_is_written_with_its_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_recipe(dir.path()).expect("write");
        let build = dir.path().join("build.sh");
        let mode = std::fs::metadata(&build)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let text = std::fs::read_to_string(build).expect("read");
        assert!(text.contains("debootstrap --variant=minbase"));
        assert!(text.contains("--change 'USER 1000:1000'"));
    }

    #[test]
    fn a_missing_docker_cli_is_said_plainly() {
        let mut options = BuildOptions::new("t:1");
        options.docker = PathBuf::from("/nonexistent/docker");
        let err = build_image(&options, &mut |_| {}).expect_err("no docker");
        assert!(matches!(err, BuildError::DockerMissing(_)), "{err}");
        assert!(err.to_string().contains("install Docker"));
    }
}
