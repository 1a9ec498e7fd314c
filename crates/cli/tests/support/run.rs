//! What one run of `atrium` did: shared by the CLI's end-to-end tests (each test file
//! includes it with `#[path]`; not every file uses every check).

#![allow(dead_code)]

use serde_json::Value;

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    /// Asserts the exit code and that stdout or stderr mentions `needle` (case-insensitive).
    #[track_caller]
    pub fn fails(self, code: i32, needle: &str) -> Self {
        assert_eq!(self.code, code, "expected exit code {code}: {self:#?}");
        let all = format!("{}{}", self.stdout, self.stderr).to_lowercase();
        let needle = needle.to_lowercase();
        assert!(all.contains(&needle), "expected {needle:?}: {self:#?}");
        self
    }

    /// The last line of stdout as JSON (`-o json` prints one document per command).
    #[track_caller]
    pub fn json(&self) -> Value {
        let line = self.stdout.lines().rev().find(|l| !l.trim().is_empty());
        let line = line.unwrap_or_else(|| panic!("no output: {self:#?}"));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }
}
