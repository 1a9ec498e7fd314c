//! Docker test fixtures: a tiny image built per test, and clean-up of containers by agent
//! label, both on drop so that a failing test leaves nothing behind.

use std::process::Command;

pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `FROM scratch` image with `sh`, `sleep` and `cat`; removed on drop.
pub struct TestImage {
    pub tag: String,
    _context: tempfile::TempDir,
}

impl TestImage {
    pub fn build() -> Self {
        let context = tempfile::tempdir().expect("temp dir");
        let mut files: Vec<String> = vec!["/bin/sh".into(), "/bin/sleep".into(), "/bin/cat".into()];
        for binary in ["/bin/sh", "/bin/sleep", "/bin/cat"] {
            let out = Command::new("ldd").arg(binary).output().expect("ldd");
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let path = match line.split_once("=>") {
                    Some((_, rest)) => rest.split_whitespace().next(),
                    None => line.split_whitespace().next(),
                };
                if let Some(path) = path.filter(|p| p.starts_with('/')) {
                    files.push(path.to_owned());
                }
            }
        }
        for file in &files {
            let target = context.path().join(file.trim_start_matches('/'));
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(file, &target).unwrap_or_else(|e| panic!("copy {file}: {e}"));
        }
        std::fs::create_dir_all(context.path().join("tmp")).unwrap();
        std::fs::write(
            context.path().join("Dockerfile"),
            "FROM scratch\nCOPY . /\nCMD [\"/bin/sleep\", \"infinity\"]\n",
        )
        .unwrap();
        let id = uuid::Uuid::new_v4().simple().to_string();
        // A file of its own makes each image's id its own: tests building in parallel would
        // otherwise share one image, and one test's `rmi` would pull it from under another's
        // build ("failed to get digest").
        std::fs::write(context.path().join("atrium-test-image"), &id).unwrap();
        let tag = format!("atrium-agent-test:{id}");
        let image = Self {
            tag,
            _context: context,
        };
        let status = Command::new("docker")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", &image.tag])
            .arg(image._context.path())
            .output()
            .expect("docker build");
        assert!(
            status.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        image
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        docker(&["rmi", "-f", &self.tag]);
    }
}

/// Removes every container labelled with the agent id on drop.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label=atrium.agent_id={}", self.0);
        let ids = docker(&["ps", "-aq", "--filter", &filter]);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            docker(&[&["rm", "-f", "-v"][..], &ids].concat());
        }
    }
}
