//! Argument parsing of the session commands.

use clap::Parser;

use super::*;
use crate::cli::{Cli, Command};

fn parse(args: &[&str]) -> Result<SessionCommand, clap::Error> {
    let cli = Cli::try_parse_from(
        ["atrium", "session"]
            .into_iter()
            .chain(args.iter().copied()),
    )?;
    match cli.command {
        Command::Session(cmd) => Ok(cmd),
        other => panic!("not a session command: {other:?}"),
    }
}

#[track_caller]
fn error(args: &[&str]) -> String {
    match parse(args) {
        Err(e) => e.to_string(),
        Ok(cmd) => panic!("expected an error: {cmd:?}"),
    }
}

#[test]
fn launch_takes_a_workspace_user_environment_url_and_zone() {
    let Ok(SessionCommand::Launch(args)) = parse(&[
        "launch",
        "kasmweb/chrome:1.16.0",
        "--user",
        "alice",
        "--env",
        "A=1",
        "--env",
        "B=x=y",
        "--url",
        "https://example.com/start",
        "--zone",
        "east",
    ]) else {
        panic!("expected launch");
    };
    assert_eq!(
        args.workspace,
        WorkspaceRef::Name("kasmweb/chrome:1.16.0".into())
    );
    assert_eq!(args.user, Some(UserRef::Username("alice".into())));
    assert!(!args.options.no_watch);
    let options = args.options.session_options();
    assert_eq!(
        options.environment.get("B").map(String::as_str),
        Some("x=y")
    );
    assert_eq!(options.environment.len(), 2);
    assert_eq!(options.url, "https://example.com/start");
    assert_eq!(options.zone_id, "east");

    let Ok(SessionCommand::Launch(args)) = parse(&["launch", "Chrome", "--no-watch"]) else {
        panic!("expected launch");
    };
    assert!(args.options.no_watch);
    assert_eq!(args.user, None);
    assert_eq!(args.options.session_options(), SessionOptions::default());
}

#[test]
fn bad_launch_input_names_the_flag() {
    assert!(error(&["launch"]).contains("<WORKSPACE>"));
    assert!(error(&["launch", "x", "--env", "NOVALUE"]).contains("--env"));
    assert!(error(&["launch", "x", "--url", "example.com"]).contains("--url"));
    assert!(error(&["launch", " "]).contains("workspace"));
}

#[test]
fn list_filters() {
    let Ok(SessionCommand::List(args)) = parse(&[
        "list",
        "--all",
        "--workspace",
        "Chrome",
        "--agent",
        "node-1",
        "--state",
        "running",
        "--include-ended",
        "--all-pages",
    ]) else {
        panic!("expected list");
    };
    let request = list_request(&args, PageRequest::default(), "", "w1");
    assert!(request.all_users && request.include_ended);
    assert_eq!(request.workspace_id, "w1");
    assert_eq!(request.agent_id, "node-1");
    assert_eq!(request.observed_state, ObservedState::Running as i32);
    let Ok(SessionCommand::List(args)) = parse(&["list"]) else {
        panic!("expected list");
    };
    let request = list_request(&args, PageRequest::default(), "", "");
    assert!(!request.all_users && !request.include_ended);
    assert_eq!(request.observed_state, 0);
    assert!(error(&["list", "--state", "sleeping"]).contains("--state"));
    assert!(error(&["list", "--page-token", "t", "--all-pages"]).contains("--all-pages"));
}

#[test]
fn actions_take_a_session_id() {
    for action in [
        "show",
        "watch",
        "keepalive",
        "pause",
        "stop",
        "resume",
        "delete",
        "explain",
    ] {
        assert!(parse(&[action, "s1"]).is_ok(), "{action}");
        assert!(parse(&[action]).is_err(), "{action} without an id");
    }
    assert!(matches!(
        parse(&["delete", "--force", "s1"]),
        Ok(SessionCommand::Delete { force: true, .. })
    ));
    assert!(matches!(
        parse(&["delete", "s1"]),
        Ok(SessionCommand::Delete { force: false, .. })
    ));
}

#[test]
fn exec_takes_a_hook_or_a_command() {
    let Ok(SessionCommand::Exec(args)) =
        parse(&["exec", "s1", "--hook", "go", "--url", "https://example.com"])
    else {
        panic!("expected exec");
    };
    let request = exec_request(args);
    assert_eq!(
        (request.hook.as_str(), request.url.as_str()),
        ("go", "https://example.com")
    );
    assert!(request.cmd.is_empty());
    let Ok(SessionCommand::Exec(args)) = parse(&["exec", "s1", "--", "ls", "-la", "/tmp"]) else {
        panic!("expected exec");
    };
    let request = exec_request(args);
    assert_eq!(request.cmd, vec!["ls", "-la", "/tmp"]);
    assert_eq!(request.hook, "");
    // One or the other, and --url only with a hook.
    assert!(parse(&["exec", "s1"]).is_err());
    assert!(parse(&["exec", "s1", "--hook", "go", "--", "ls"]).is_err());
    assert!(error(&["exec", "s1", "--url", "https://x", "--", "ls"]).contains("--url"));
    assert!(error(&["exec", "s1", "--url", "https://x"]).contains("--hook"));
    assert!(error(&["exec", "s1", "--hook", "launch"]).contains("--hook"));
}

#[test]
fn go_defaults_to_the_caller() {
    let Ok(SessionCommand::Go(args)) = parse(&["go"]) else {
        panic!("expected go");
    };
    assert_eq!(args.user, None);
    let Ok(SessionCommand::Go(args)) = parse(&["go", "--user", "bob", "--no-watch"]) else {
        panic!("expected go");
    };
    assert_eq!(args.user, Some(UserRef::Username("bob".into())));
    assert!(args.options.no_watch);
}
