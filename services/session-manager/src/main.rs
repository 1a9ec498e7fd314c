//! `atrium-session-manager`: the session-manager as its own process.

fn main() {}
