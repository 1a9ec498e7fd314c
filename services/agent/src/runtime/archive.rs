//! Tar archives of [`FileEntry`]s: what Docker's archive endpoint takes to write files into a
//! container, and (for checks) what it gives back.

use std::io::Read as _;

use super::{FileEntry, FileKind};

/// Packs entries with their modes and owners, paths relative to `/`, directories first as
/// given. Fails only on a path tar cannot hold.
pub fn pack(entries: &[FileEntry]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mtime = chrono::Utc::now().timestamp().max(0).unsigned_abs();
    for entry in entries {
        let path = entry.path.trim_start_matches('/');
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        header.set_mtime(mtime);
        match &entry.kind {
            FileKind::File(content) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(content.len() as u64);
                builder.append_data(&mut header, path, content.as_slice())?;
            }
            FileKind::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, path, std::io::empty())?;
            }
        }
    }
    builder.into_inner()
}

/// Unpacks an archive into entries (paths made absolute under `base`, which is where the
/// archive was taken: Docker names entries relative to the requested path's parent).
pub fn unpack(archive: &[u8], base: &str) -> std::io::Result<Vec<FileEntry>> {
    let mut reader = tar::Archive::new(archive);
    let mut entries = Vec::new();
    for entry in reader.entries()? {
        let mut entry = entry?;
        let header = entry.header();
        let mode = header.mode()? & 0o7777;
        let uid = header.uid()?;
        let gid = header.gid()?;
        let is_dir = header.entry_type().is_dir();
        let relative = entry.path()?.to_string_lossy().into_owned();
        let path = format!(
            "{}/{}",
            base.trim_end_matches('/'),
            relative.trim_end_matches('/')
        );
        let kind = if is_dir {
            FileKind::Directory
        } else {
            let mut content = Vec::new();
            entry.read_to_end(&mut content)?;
            FileKind::File(content)
        };
        entries.push(FileEntry {
            path,
            kind,
            mode,
            uid,
            gid,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_modes_and_owners() {
        let entries = vec![
            FileEntry {
                path: "/home/kasm-user/.ssh".into(),
                kind: FileKind::Directory,
                mode: 0o700,
                uid: 1000,
                gid: 1000,
            },
            FileEntry {
                path: "/home/kasm-user/.ssh/id_ed25519".into(),
                kind: FileKind::File(b"private".to_vec()),
                mode: 0o600,
                uid: 1000,
                gid: 1000,
            },
            FileEntry {
                path: format!("/etc/{}/policy.json", "x".repeat(120)),
                kind: FileKind::File(b"{}".to_vec()),
                mode: 0o444,
                uid: 0,
                gid: 0,
            },
        ];
        let archive = pack(&entries).expect("pack");
        let back = unpack(&archive, "").expect("unpack");
        assert_eq!(back, entries);
    }
}
