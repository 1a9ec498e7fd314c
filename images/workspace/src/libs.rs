//! Finding a binary's shared libraries, dynamic loader included, by reading `ldd`'s output.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::image::BuildError;

/// What `ldd` said about a binary.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Libraries {
    /// Absolute paths of every library and the loader, in `ldd`'s order.
    pub found: Vec<PathBuf>,
    /// Names `ldd` could not resolve.
    pub missing: Vec<String>,
}

/// Parses `ldd` output. Lines look like `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)`,
/// `/lib64/ld-linux-x86-64.so.2 (0x…)` for the loader, `linux-vdso.so.1 (0x…)` for the
/// kernel's vDSO (no file), `libfoo.so => not found`, or `statically linked`.
pub fn parse_ldd(output: &str) -> Libraries {
    let mut libs = Libraries::default();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, target) = match line.split_once("=>") {
            Some((name, target)) => (name.trim(), target.trim()),
            None => (line, line),
        };
        if target.starts_with("not found") {
            libs.missing.push(name.to_owned());
            continue;
        }
        // Drop the load address.
        let path = target.split(" (0x").next().unwrap_or(target).trim();
        if path.starts_with('/') && !libs.found.iter().any(|p| p == Path::new(path)) {
            libs.found.push(PathBuf::from(path));
        }
    }
    libs
}

/// Runs `ldd` on `binary`; a static binary has no libraries.
pub fn shared_libraries(binary: &Path) -> Result<Libraries, BuildError> {
    let output = Command::new("ldd").arg(binary).output().map_err(|e| {
        BuildError::Ldd(format!(
            "run ldd (it comes with the C library; is it installed?): {e}"
        ))
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        if stdout.contains("not a dynamic executable")
            || stderr.contains("not a dynamic executable")
        {
            return Ok(Libraries::default());
        }
        return Err(BuildError::Ldd(format!(
            "ldd {} failed: {}",
            binary.display(),
            stderr.trim()
        )));
    }
    Ok(parse_ldd(&stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GLIBC: &str = "\
\tlinux-vdso.so.1 (0x00007ffc8a5f2000)
\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1b0c5e0000)
\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f1b0c500000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1b0c31f000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f1b0c62c000)
";

    #[test]
    fn finds_libraries_and_the_loader_but_not_the_vdso() {
        let libs = parse_ldd(GLIBC);
        assert_eq!(
            libs.found,
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libm.so.6",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2",
            ]
            .map(PathBuf::from)
        );
        assert!(libs.missing.is_empty());
    }

    #[test]
    fn reports_missing_libraries() {
        let libs = parse_ldd("\tlibssl.so.3 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n");
        assert_eq!(libs.missing, ["libssl.so.3"]);
        assert_eq!(libs.found, [PathBuf::from("/lib/libc.so.6")]);
    }

    #[test]
    fn a_static_binary_has_none() {
        assert_eq!(parse_ldd("\tstatically linked\n"), Libraries::default());
    }

    #[test]
    fn a_vdso_with_an_arrow_and_no_path_is_skipped() {
        let libs = parse_ldd("\tlinux-gate.so.1 =>  (0xb7f0b000)\n");
        assert!(libs.found.is_empty() && libs.missing.is_empty());
    }
}
