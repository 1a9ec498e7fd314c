//! The notes box: plain UTF-8 text of at most 1 MiB, kept in `$HOME/notes.txt`.

use std::io;
use std::path::{Path, PathBuf};

use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper::body::{Body, Bytes};
use tokio::sync::Mutex;

/// The largest notes accepted, in bytes.
pub const MAX_NOTES_BYTES: usize = 1024 * 1024;

/// The file under `$HOME` that holds the notes.
pub const FILE_NAME: &str = "notes.txt";

/// Why notes were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    #[error("notes are larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("notes must be UTF-8 text")]
    NotText,
    #[error("read the request body: {0}")]
    Body(String),
}

/// Reads a request body of at most `limit` bytes as UTF-8 text.
pub async fn read_text<B>(body: B, limit: usize) -> Result<String, NotesError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return Err(NotesError::TooLarge { limit }),
        Err(e) => return Err(NotesError::Body(e.to_string())),
    };
    String::from_utf8(bytes.to_vec()).map_err(|_| NotesError::NotText)
}

/// Refuses a declared `Content-Length` over the limit before reading anything.
pub fn check_declared_length(length: Option<u64>, limit: usize) -> Result<(), NotesError> {
    match length {
        Some(n) if n > limit as u64 => Err(NotesError::TooLarge { limit }),
        _ => Ok(()),
    }
}

/// The notes file; saves are serialised and atomic (write a temp file, then rename).
#[derive(Debug)]
pub struct NotesStore {
    path: PathBuf,
    write: Mutex<()>,
}

impl NotesStore {
    pub fn new(home: &Path) -> Self {
        Self {
            path: home.join(FILE_NAME),
            write: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved notes ("" before the first save).
    pub async fn load(&self) -> io::Result<String> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e),
        }
    }

    /// Replaces the notes, creating `$HOME` if needed.
    pub async fn save(&self, text: &str) -> io::Result<()> {
        let _guard = self.write.lock().await;
        if let Some(dir) = self.path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let temp = self.path.with_extension("txt.tmp");
        tokio::fs::write(&temp, text.as_bytes()).await?;
        tokio::fs::rename(&temp, &self.path).await
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;

    use super::*;

    #[tokio::test]
    async fn text_up_to_the_limit_is_accepted() {
        let text = "é".repeat(8);
        let got = read_text(Full::new(Bytes::from(text.clone())), text.len()).await;
        assert_eq!(got.expect("accepted"), text);
    }

    #[tokio::test]
    async fn one_byte_over_the_limit_is_refused() {
        let body = Full::new(Bytes::from(vec![b'a'; MAX_NOTES_BYTES + 1]));
        let got = read_text(body, MAX_NOTES_BYTES).await;
        assert!(matches!(got, Err(NotesError::TooLarge { limit }) if limit == MAX_NOTES_BYTES));
    }

    #[tokio::test]
    async fn binary_is_refused() {
        let got = read_text(Full::new(Bytes::from_static(&[0xff, 0xfe])), 10).await;
        assert!(matches!(got, Err(NotesError::NotText)));
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_early() {
        assert!(check_declared_length(None, 10).is_ok());
        assert!(check_declared_length(Some(10), 10).is_ok());
        assert!(matches!(
            check_declared_length(Some(11), 10),
            Err(NotesError::TooLarge { limit: 10 })
        ));
    }

    #[tokio::test]
    async fn notes_round_trip_through_a_new_home() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = NotesStore::new(&dir.path().join("home/kasm-user"));
        assert_eq!(store.load().await.expect("load"), "");
        store.save("first").await.expect("save");
        store.save("second\nline").await.expect("save");
        assert_eq!(store.load().await.expect("load"), "second\nline");
        assert!(store.path().ends_with("home/kasm-user/notes.txt"));
    }
}
