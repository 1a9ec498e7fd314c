//! The recipe's files, embedded, and the hash that names one build of them.

use std::path::Path;

use sha2::{Digest as _, Sha256};

/// The tag `atrium image build-desktop` gives the image, named like the demo image's.
pub const DEFAULT_TAG: &str = "atrium/workspace-desktop:latest";

/// The label holding the recipe hash; an image that carries the hash of a recipe is its build.
pub const RECIPE_LABEL: &str = "atrium.desktop.recipe";

/// The label every desktop image carries, as `key=value`.
pub const DESKTOP_LABEL: &str = "atrium.desktop=1";

/// The recipe's files: name in the recipe directory, content, Unix mode.
pub const FILES: &[(&str, &str, u32)] = &[
    ("build.sh", include_str!("../recipe/build.sh"), 0o755),
    ("startup.sh", include_str!("../recipe/startup.sh"), 0o755),
    ("jwmrc", include_str!("../recipe/jwmrc"), 0o644),
    ("xterm.ad", include_str!("../recipe/xterm.ad"), 0o644),
    ("index.html", include_str!("../recipe/index.html"), 0o644),
    (
        "websockify_auth.py",
        include_str!("../recipe/websockify_auth.py"),
        0o644,
    ),
];

/// What one build is made of: the files and the choices that change what comes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// The Debian release (`bookworm`).
    pub suite: String,
    pub mirror: String,
    pub security_mirror: String,
    /// Add Firefox ESR.
    pub with_browser: bool,
}

impl Recipe {
    pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
    pub const DEFAULT_SECURITY_MIRROR: &str = "http://deb.debian.org/debian-security";

    /// A recipe for `suite` from Debian's own mirrors.
    pub fn new(suite: impl Into<String>, with_browser: bool) -> Self {
        Self {
            suite: suite.into(),
            mirror: Self::DEFAULT_MIRROR.into(),
            security_mirror: Self::DEFAULT_SECURITY_MIRROR.into(),
            with_browser,
        }
    }

    /// Hex SHA-256 over every file (name, length, content) and every choice: the same recipe
    /// always hashes the same, and any change to either makes a new image.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"atrium-desktop-recipe-v1\0");
        for (name, content, mode) in FILES {
            hasher.update(name.as_bytes());
            hasher.update(b"\0");
            hasher.update(mode.to_le_bytes());
            hasher.update((content.len() as u64).to_le_bytes());
            hasher.update(content.as_bytes());
        }
        for choice in [
            self.suite.as_str(),
            self.mirror.as_str(),
            self.security_mirror.as_str(),
            if self.with_browser {
                "browser"
            } else {
                "no-browser"
            },
        ] {
            hasher.update((choice.len() as u64).to_le_bytes());
            hasher.update(choice.as_bytes());
        }
        format!("{:x}", hasher.finalize())
    }

    /// `build.sh`'s arguments for this recipe, the tag and the labels.
    pub fn build_args(&self, tag: &str, cache_dir: Option<&Path>) -> Vec<String> {
        let mut args = vec![
            "--tag".to_owned(),
            tag.to_owned(),
            "--suite".to_owned(),
            self.suite.clone(),
            "--mirror".to_owned(),
            self.mirror.clone(),
            "--security-mirror".to_owned(),
            self.security_mirror.clone(),
            "--label".to_owned(),
            format!("{RECIPE_LABEL}={}", self.hash()),
            "--label".to_owned(),
            DESKTOP_LABEL.to_owned(),
        ];
        if self.with_browser {
            args.push("--with-browser".to_owned());
        }
        if let Some(dir) = cache_dir {
            args.push("--cache-dir".to_owned());
            args.push(dir.display().to_string());
        }
        args
    }
}

/// The Debian release this machine runs, from os-release text: its `VERSION_CODENAME` when
/// `ID` (or `ID_LIKE`) says Debian. Other distributions' codenames are not on Debian's mirrors.
pub fn debian_suite(os_release: &str) -> Result<String, String> {
    let field = |key: &str| {
        os_release.lines().find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_owned())
        })
    };
    let id = field("ID").unwrap_or_default();
    let like = field("ID_LIKE").unwrap_or_default();
    if id != "debian" {
        return Err(format!(
            "this machine runs {} (ID={id:?}{}), not Debian: pass --suite (e.g. bookworm)",
            field("PRETTY_NAME").unwrap_or_else(|| "an unknown system".into()),
            if like.is_empty() {
                String::new()
            } else {
                format!(", ID_LIKE={like:?}")
            }
        ));
    }
    match field("VERSION_CODENAME") {
        Some(codename) if !codename.is_empty() => Ok(codename),
        _ => Err("os-release names no VERSION_CODENAME (Debian testing/sid?): pass --suite".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_and_changes_with_every_choice() {
        let base = Recipe::new("bookworm", false);
        assert_eq!(base.hash(), Recipe::new("bookworm", false).hash());
        assert_eq!(base.hash().len(), 64);
        let variants = [
            Recipe::new("trixie", false),
            Recipe::new("bookworm", true),
            Recipe {
                mirror: "http://mirror.example/debian".into(),
                ..base.clone()
            },
            Recipe {
                security_mirror: "http://mirror.example/debian-security".into(),
                ..base.clone()
            },
        ];
        for variant in variants {
            assert_ne!(variant.hash(), base.hash(), "{variant:?}");
        }
    }

    #[test]
    fn build_args_carry_the_hash_and_the_choices() {
        let recipe = Recipe::new("bookworm", true);
        let args = recipe.build_args("t:1", Some(Path::new("/var/cache/x")));
        let joined = args.join(" ");
        assert!(
            joined.starts_with("--tag t:1 --suite bookworm "),
            "{joined}"
        );
        assert!(joined.contains(&format!("--label {RECIPE_LABEL}={}", recipe.hash())));
        assert!(joined.contains("--label atrium.desktop=1"));
        assert!(joined.contains("--with-browser"));
        assert!(joined.ends_with("--cache-dir /var/cache/x"));
        assert!(
            !Recipe::new("bookworm", false)
                .build_args("t", None)
                .contains(&"--with-browser".to_owned())
        );
    }

    #[test]
    fn the_suite_comes_from_debian_os_release_only() {
        let bookworm = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n\
                        VERSION_CODENAME=bookworm\n";
        assert_eq!(debian_suite(bookworm).as_deref(), Ok("bookworm"));
        let ubuntu = "PRETTY_NAME=\"Ubuntu 24.04 LTS\"\nID=ubuntu\nID_LIKE=debian\n\
                      VERSION_CODENAME=noble\n";
        let err = debian_suite(ubuntu).expect_err("ubuntu");
        assert!(
            err.contains("not Debian") && err.contains("--suite"),
            "{err}"
        );
        let sid = "ID=debian\nPRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\n";
        assert!(debian_suite(sid).expect_err("sid").contains("--suite"));
    }

    #[test]
    fn every_recipe_file_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipe");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("read recipe dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(n, _, _)| (*n).to_owned()).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "a file in recipe/ is not in FILES, or the reverse"
        );
    }
}
