//! Following a session live over WatchSession (the service pushes every change; nobody polls):
//! a launch until the session runs or fails, a watch until the session ends. Each change is one
//! line for people, or one JSON document per line for programs (the last line is the final
//! state, or the error).

use atrium_proto::session::v1::{DesiredState, GetSessionRequest, ObservedState, Session};

use super::view::{running_line, session_json, watch_line};
use crate::commands::Ctx;
use crate::error::{CliError, CliResult};
use crate::output::print_json;

/// What following waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// A launch: success when running; failure when it fails, is lost, or is sent elsewhere.
    Running,
    /// A watch: until the service ends the stream (the session was deleted or failed).
    End,
}

/// Where a followed session stands with respect to a goal.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep following.
    Pending,
    Reached,
    /// It will not get there; why, in a sentence.
    Failed(String),
}

/// The verdict on one state (pure).
pub fn verdict(goal: Goal, s: &Session) -> Verdict {
    let observed = ObservedState::try_from(s.observed_state).unwrap_or_default();
    let desired = DesiredState::try_from(s.desired_state).unwrap_or_default();
    let reason = |what: &str| {
        if s.message.is_empty() {
            format!("session {} {what}", s.id)
        } else {
            format!("session {} {what}: {}", s.id, s.message)
        }
    };
    match (goal, observed) {
        (_, ObservedState::Failed) => Verdict::Failed(reason("failed")),
        (Goal::Running, ObservedState::Running) if desired == DesiredState::Running => {
            Verdict::Reached
        }
        (Goal::Running, ObservedState::Lost) => Verdict::Failed(reason("was lost")),
        (Goal::Running, ObservedState::Deleted) => Verdict::Failed(reason("was deleted")),
        (Goal::Running, _) if desired != DesiredState::Running => Verdict::Failed(format!(
            "session {} was asked to be {} before it ran",
            s.id,
            super::view::desired_name(s.desired_state)
        )),
        (Goal::End, ObservedState::Deleted) => Verdict::Reached,
        _ => Verdict::Pending,
    }
}

/// Follows `session` (as the caller last saw it) until `goal`; prints every change.
pub async fn follow(ctx: &mut Ctx, session: Session, goal: Goal) -> CliResult {
    let id = session.id.clone();
    let request = GetSessionRequest {
        session_id: id.clone(),
    };
    let mut stream = ctx
        .session(request, |mut c, r| async move { c.watch_session(r).await })
        .await?;
    let mut last = session;
    let mut printed = false;
    while let Some(next) = stream.message().await.map_err(CliError::Status)? {
        if !printed || changed(&last, &next) {
            print_change(ctx, &next);
            printed = true;
        }
        last = next;
        match verdict(goal, &last) {
            Verdict::Pending => {}
            Verdict::Reached => return finish(ctx, goal, &last),
            Verdict::Failed(why) => return Err(aborted(why)),
        }
    }
    // The service ended the stream: the session reached a final state it did not send, or the
    // service went away. Ask once more.
    let request = GetSessionRequest { session_id: id };
    let now = ctx
        .session(request, |mut c, r| async move { c.get_session(r).await })
        .await?;
    if changed(&last, &now) {
        print_change(ctx, &now);
    }
    match (goal, verdict(goal, &now)) {
        (_, Verdict::Reached) | (Goal::End, Verdict::Pending) => finish(ctx, goal, &now),
        (_, Verdict::Failed(why)) => Err(aborted(why)),
        (Goal::Running, Verdict::Pending) => Err(aborted(format!(
            "the session-manager stopped reporting while session {} was {}",
            now.id,
            super::view::observed_name(now.observed_state)
        ))),
    }
}

fn changed(a: &Session, b: &Session) -> bool {
    a.observed_state != b.observed_state
        || a.desired_state != b.desired_state
        || a.progress != b.progress
        || a.message != b.message
}

fn print_change(ctx: &Ctx, s: &Session) {
    if ctx.json() {
        print_json(&session_json(s));
    } else {
        println!("{}", watch_line(s));
    }
}

fn finish(ctx: &Ctx, goal: Goal, s: &Session) -> CliResult {
    if !ctx.json() && goal == Goal::Running {
        println!("{}", running_line(s));
    }
    Ok(())
}

fn aborted(why: String) -> CliError {
    CliError::Status(tonic::Status::aborted(why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(observed: ObservedState, desired: DesiredState, message: &str) -> Session {
        Session {
            id: "s1".into(),
            observed_state: observed as i32,
            desired_state: desired as i32,
            message: message.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_launch_waits_for_running_and_fails_with_the_reason() {
        use DesiredState as D;
        use ObservedState as O;
        for pending in [O::Requested, O::Starting] {
            assert_eq!(
                verdict(Goal::Running, &s(pending, D::Running, "")),
                Verdict::Pending
            );
        }
        assert_eq!(
            verdict(Goal::Running, &s(O::Running, D::Running, "")),
            Verdict::Reached
        );
        assert_eq!(
            verdict(Goal::Running, &s(O::Failed, D::Running, "image not found")),
            Verdict::Failed("session s1 failed: image not found".into())
        );
        assert_eq!(
            verdict(Goal::Running, &s(O::Lost, D::Running, "")),
            Verdict::Failed("session s1 was lost".into())
        );
        assert_eq!(
            verdict(Goal::Running, &s(O::Starting, D::Deleted, "")),
            Verdict::Failed("session s1 was asked to be deleted before it ran".into())
        );
        // Running, but on its way to paused: not what a launch waits for.
        assert!(matches!(
            verdict(Goal::Running, &s(O::Running, D::Paused, "")),
            Verdict::Failed(_)
        ));
    }

    #[test]
    fn a_watch_runs_until_the_end() {
        use DesiredState as D;
        use ObservedState as O;
        assert_eq!(
            verdict(Goal::End, &s(O::Running, D::Running, "")),
            Verdict::Pending
        );
        assert_eq!(
            verdict(Goal::End, &s(O::Stopped, D::Stopped, "")),
            Verdict::Pending
        );
        assert_eq!(
            verdict(Goal::End, &s(O::Deleted, D::Deleted, "")),
            Verdict::Reached
        );
        assert!(matches!(
            verdict(Goal::End, &s(O::Failed, D::Running, "oom")),
            Verdict::Failed(m) if m.ends_with("oom")
        ));
    }
}
