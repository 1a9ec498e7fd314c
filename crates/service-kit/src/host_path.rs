//! The one rule for paths that reach the host or a container: what policy accepts at write time
//! (workspace volumes, the `volume_mapping` setting, run_config devices and tmpfs) and what the
//! agent accepts at launch are the same function, so a saved workspace never fails to launch on
//! a path.
//!
//! A path is absolute, already normalised (no empty, `.` or `..` segments, no trailing `/` except
//! for `/` itself), at most [`MAX_PATH_LEN`] bytes, without control characters, and without `:`
//! or `,`, which would break Docker's `host:container:mode` bind and mount specifications.

use crate::error::ApiError;

/// The longest path accepted (Linux PATH_MAX).
pub const MAX_PATH_LEN: usize = 4096;

/// Why `path` is not acceptable, or `None` when it is.
pub fn problem(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("must not be empty".into());
    }
    if path.len() > MAX_PATH_LEN {
        return Some(format!("must be at most {MAX_PATH_LEN} bytes"));
    }
    if path.chars().any(char::is_control) {
        return Some("must not contain control characters".into());
    }
    if !path.starts_with('/') {
        return Some(format!(
            "{path:?} must be an absolute path (start with \"/\")"
        ));
    }
    if path.contains(':') || path.contains(',') {
        return Some(format!(
            "{path:?} must not contain ':' or ',' (they break Docker's bind syntax)"
        ));
    }
    if path == "/" {
        return None;
    }
    if path.ends_with('/') {
        return Some(format!("{path:?} must not end with \"/\""));
    }
    for segment in path[1..].split('/') {
        match segment {
            "" => return Some(format!("{path:?} must not contain \"//\"")),
            "." | ".." => {
                return Some(format!("{path:?} must not contain \"{segment}\" segments"));
            }
            _ => {}
        }
    }
    None
}

/// A host path (a bind source, a device): see the module rules.
pub fn host(field: &str, path: &str) -> Result<(), ApiError> {
    match problem(path) {
        None => Ok(()),
        Some(why) => Err(ApiError::invalid(field, why)),
    }
}

/// A path inside the container that something is mounted on: the module rules, and never `/`.
pub fn mount_point(field: &str, path: &str) -> Result<(), ApiError> {
    host(field, path)?;
    if path == "/" {
        return Err(ApiError::invalid(
            field,
            "must not be \"/\" (the container's root)",
        ));
    }
    Ok(())
}

/// Drops trailing `/`s (not from `/` itself): the one normalisation that is done for the caller,
/// for inputs that historically accepted it (the `volume_mapping` setting).
pub fn trim_trailing_slashes(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() && path.starts_with('/') {
        "/"
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accepts_normal_absolute_paths() {
        for ok in ["/", "/srv", "/srv/data", "/var/run/docker.sock", "/a b/c"] {
            assert_eq!(problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn refuses_what_docker_or_the_host_would_misread() {
        for bad in [
            "",
            "srv",
            "./srv",
            "/srv/",
            "/srv//data",
            "/srv/./data",
            "/srv/../etc",
            "/a:b",
            "/a,b",
            "/a\nb",
            "/a\0b",
        ] {
            assert!(problem(bad).is_some(), "{bad:?} accepted");
        }
        assert!(problem(&format!("/{}", "a".repeat(MAX_PATH_LEN))).is_some());
        assert!(mount_point("bind", "/").is_err());
        let err = host("volume_mapping[0].host_path", "/a:b").expect_err("colon");
        assert!(
            err.to_string().starts_with("volume_mapping[0].host_path:"),
            "{err}"
        );
    }

    #[test]
    fn trims_trailing_slashes_but_keeps_root() {
        assert_eq!(trim_trailing_slashes("/srv/"), "/srv");
        assert_eq!(trim_trailing_slashes("///"), "/");
        assert_eq!(trim_trailing_slashes("srv/"), "srv");
    }

    proptest! {
        /// Whatever is accepted splits into plain segments and survives a Docker bind spec.
        #[test]
        fn accepted_paths_are_plain(path in "[/a-z.:,]{0,12}") {
            if problem(&path).is_none() {
                prop_assert!(path.starts_with('/'));
                prop_assert!(!path.contains(':') && !path.contains(','));
                let spec = format!("{path}:/mnt:ro");
                prop_assert_eq!(spec.split(':').count(), 3);
                if path != "/" {
                    prop_assert!(path[1..].split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
                }
            }
        }
    }
}
