//! Asking the person at the keyboard, or reading the answers from stdin in scripts.
//!
//! When stdin is a terminal, prompts go to stderr (secrets through rpassword, without echo, and
//! new passwords twice). When it is not, no prompt is shown and each answer is simply the next
//! line of stdin (one line per question, new passwords once), so a script or a test can drive
//! every interactive flow by writing lines in the order the questions come.

use std::io::{BufRead, IsTerminal, Write};

use secrecy::{ExposeSecret, SecretString};

use crate::error::{CliResult, usage};

#[derive(Debug)]
pub struct Prompter {
    interactive: bool,
}

impl Prompter {
    pub fn new() -> Self {
        Self {
            interactive: std::io::stdin().is_terminal(),
        }
    }

    /// Whether stdin is a terminal (a person is there to answer).
    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// The next line of stdin, without its line ending, whatever stdin is. `what` names the
    /// answer in the error when stdin has ended.
    pub fn stdin_line(&mut self, what: &str) -> CliResult<String> {
        let mut line = String::new();
        let n = std::io::stdin().lock().read_line(&mut line)?;
        if n == 0 {
            return Err(usage(format!("stdin ended before the {what} was given")));
        }
        let trimmed = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(trimmed);
        Ok(line)
    }

    /// A visible answer (usernames, codes), trimmed.
    pub fn line(&mut self, prompt: &str, what: &str) -> CliResult<String> {
        if self.interactive {
            eprint!("{prompt}");
            std::io::stderr().flush()?;
        }
        let answer = self.stdin_line(what)?.trim().to_owned();
        if answer.is_empty() {
            return Err(usage(format!("no {what} given")));
        }
        Ok(answer)
    }

    /// A secret answer: no echo on a terminal, else the next stdin line as is.
    pub fn secret(&mut self, prompt: &str, what: &str) -> CliResult<SecretString> {
        let answer = if self.interactive {
            rpassword::prompt_password(prompt)?
        } else {
            self.stdin_line(what)?
        };
        if answer.is_empty() {
            return Err(usage(format!("no {what} given")));
        }
        Ok(SecretString::from(answer))
    }

    /// A new password: typed twice on a terminal (they must match), one stdin line otherwise.
    pub fn new_password(&mut self, what: &str) -> CliResult<SecretString> {
        // Errors name the new one: "stdin ended before the new password was given".
        let first = self.secret(&format!("New {what}: "), &format!("new {what}"))?;
        if self.interactive {
            let again = self.secret(&format!("Repeat the new {what}: "), what)?;
            if first.expose_secret() != again.expose_secret() {
                return Err(usage(format!("the two {what}s differ")));
            }
        }
        Ok(first)
    }

    /// A yes/no question answered `y` or `yes`; only asked on a terminal.
    pub fn confirm(&mut self, question: &str) -> CliResult<bool> {
        if !self.interactive {
            return Ok(false);
        }
        eprint!("{question} [y/N] ");
        std::io::stderr().flush()?;
        let answer = self.stdin_line("answer")?;
        Ok(matches!(
            answer.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    }
}
