//! How sessions are printed: tables, `key: value` fields and one line per change while following
//! a session for people; JSON for programs (field names as in session.proto, states as
//! lowercase names, timestamps as RFC 3339 or null).

use atrium_proto::session::v1::{
    DesiredState, KeepaliveResponse, ObservedState, Session, SessionExplanation,
};
use serde_json::{Value, json};

use crate::json::{instant, time, time_text};
use crate::output::Table;

/// An observed state's name (`running`), as the service and `--state` spell it.
pub fn observed_name(value: i32) -> String {
    let name = match ObservedState::try_from(value) {
        Ok(ObservedState::Unspecified) => "unspecified",
        Ok(ObservedState::Requested) => "requested",
        Ok(ObservedState::Starting) => "starting",
        Ok(ObservedState::Running) => "running",
        Ok(ObservedState::Pausing) => "pausing",
        Ok(ObservedState::Paused) => "paused",
        Ok(ObservedState::Stopping) => "stopping",
        Ok(ObservedState::Stopped) => "stopped",
        Ok(ObservedState::Deleting) => "deleting",
        Ok(ObservedState::Deleted) => "deleted",
        Ok(ObservedState::Failed) => "failed",
        Ok(ObservedState::Lost) => "lost",
        Err(_) => return format!("unknown({value})"),
    };
    name.to_owned()
}

/// A desired state's name (`running`, `paused`, `stopped`, `deleted`).
pub fn desired_name(value: i32) -> String {
    let name = match DesiredState::try_from(value) {
        Ok(DesiredState::Unspecified) => "unspecified",
        Ok(DesiredState::Running) => "running",
        Ok(DesiredState::Paused) => "paused",
        Ok(DesiredState::Stopped) => "stopped",
        Ok(DesiredState::Deleted) => "deleted",
        Err(_) => return format!("unknown({value})"),
    };
    name.to_owned()
}

/// The state for people: `running`, or `running -> stopped` while it converges.
pub fn state_text(s: &Session) -> String {
    let observed = observed_name(s.observed_state);
    let desired = desired_name(s.desired_state);
    // Desired "running" reads as "on its way" while requested or starting.
    let converged = observed == desired
        || (desired == "running" && matches!(observed.as_str(), "requested" | "starting"))
        || matches!(observed.as_str(), "failed" | "lost");
    if converged {
        observed
    } else {
        format!("{observed} -> {desired}")
    }
}

/// Where the session answers: `host:port` while running or paused, else "".
pub fn address(s: &Session) -> String {
    if s.host.is_empty() {
        String::new()
    } else {
        format!("{}:{}", s.host, s.port)
    }
}

pub fn session_json(s: &Session) -> Value {
    json!({
        "id": s.id,
        "user_id": s.user_id,
        "workspace_id": s.workspace_id,
        "image": s.image,
        "desired_state": desired_name(s.desired_state),
        "observed_state": observed_name(s.observed_state),
        "progress": s.progress,
        "message": s.message,
        "generation": s.generation,
        "agent_id": s.agent_id,
        "zone_id": s.zone_id,
        "host": s.host,
        "port": s.port,
        "url": s.url,
        "created_at": time(s.created_at.as_ref()),
        "started_at": time(s.started_at.as_ref()),
        "last_keepalive_at": time(s.last_keepalive_at.as_ref()),
        "expires_at": time(s.expires_at.as_ref()),
        "updated_at": time(s.updated_at.as_ref()),
    })
}

pub fn session_table(sessions: &[Session]) -> Table {
    let mut table = Table::new(&[
        "ID", "USER", "IMAGE", "STATE", "AGENT", "CREATED", "EXPIRES",
    ]);
    for s in sessions {
        table.push(vec![
            s.id.clone(),
            s.user_id.clone(),
            s.image.clone(),
            state_text(s),
            s.agent_id.clone(),
            time_text(s.created_at.as_ref()),
            time_text(s.expires_at.as_ref()),
        ]);
    }
    table
}

pub fn session_fields(s: &Session) -> Vec<(&'static str, String)> {
    vec![
        ("id", s.id.clone()),
        ("user", s.user_id.clone()),
        ("workspace", s.workspace_id.clone()),
        ("image", s.image.clone()),
        ("state", observed_name(s.observed_state)),
        ("desired", desired_name(s.desired_state)),
        ("progress", format!("{}%", s.progress)),
        ("message", s.message.clone()),
        ("agent", s.agent_id.clone()),
        ("zone", s.zone_id.clone()),
        ("address", address(s)),
        ("url", s.url.clone()),
        ("created", time_text(s.created_at.as_ref())),
        ("started", time_text(s.started_at.as_ref())),
        ("last keepalive", time_text(s.last_keepalive_at.as_ref())),
        ("expires", time_text(s.expires_at.as_ref())),
        ("updated", time_text(s.updated_at.as_ref())),
        ("generation", s.generation.to_string()),
    ]
}

/// One line per change while following: `12:00:01  starting    40%  pulling the image`.
pub fn watch_line(s: &Session) -> String {
    let at = instant(s.updated_at.as_ref())
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_else(|| "--:--:--".to_owned());
    let line = format!(
        "{at}  {:<10} {:>3}%  {}",
        state_text(s),
        s.progress,
        s.message
    );
    line.trim_end().to_owned()
}

/// The last line of a launch that reached running.
pub fn running_line(s: &Session) -> String {
    let mut line = format!("session {} is running", s.id);
    if !s.agent_id.is_empty() {
        line.push_str(&format!(" on agent {}", s.agent_id));
    }
    let address = address(s);
    if !address.is_empty() {
        line.push_str(&format!(" at {address}"));
    }
    if !s.url.is_empty() {
        line.push_str(&format!(" (url {})", s.url));
    }
    line
}

/// What an action did: `session ID: stop requested (now running)`.
pub fn action_line(verb: &str, s: &Session) -> String {
    format!("session {}: {verb} requested (now {})", s.id, state_text(s))
}

pub fn keepalive_json(session_id: &str, k: &KeepaliveResponse) -> Value {
    json!({
        "session_id": session_id,
        "extended": k.extended,
        "expires_at": time(k.expires_at.as_ref()),
        "message": k.message,
    })
}

pub fn keepalive_text(session_id: &str, k: &KeepaliveResponse) -> String {
    let until = time_text(k.expires_at.as_ref());
    let mut text = if k.extended {
        format!("session {session_id} kept alive until {until}")
    } else {
        format!("session {session_id}: not extended; it ends at {until}")
    };
    if !k.message.is_empty() {
        text.push_str(&format!(" ({})", k.message));
    }
    text
}

pub fn explanation_json(e: &SessionExplanation) -> Value {
    json!({
        "session": e.session.as_ref().map(session_json),
        "reasons": e.reasons,
        "ending_rule": e.ending_rule,
        "ends_at": time(e.ends_at.as_ref()),
        "action": e.action,
    })
}

/// The explanation for people: the session's gist, how it ends, then the reasons.
pub fn explanation_fields(e: &SessionExplanation) -> Vec<(&'static str, String)> {
    let s = e.session.clone().unwrap_or_default();
    vec![
        ("id", s.id.clone()),
        ("image", s.image.clone()),
        ("state", state_text(&s)),
        ("ends by", e.ending_rule.clone()),
        ("ends at", time_text(e.ends_at.as_ref())),
        ("then", e.action.clone()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    fn session(observed: ObservedState, desired: DesiredState) -> Session {
        Session {
            id: "s1".into(),
            user_id: "u1".into(),
            image: "kasmweb/chrome:1".into(),
            observed_state: observed as i32,
            desired_state: desired as i32,
            progress: 40,
            message: "pulling the image".into(),
            created_at: ts(1_700_000_000),
            updated_at: ts(1_700_000_061),
            ..Default::default()
        }
    }

    #[test]
    fn states_have_names() {
        assert_eq!(observed_name(ObservedState::Lost as i32), "lost");
        assert_eq!(observed_name(99), "unknown(99)");
        assert_eq!(desired_name(DesiredState::Paused as i32), "paused");
        let starting = session(ObservedState::Starting, DesiredState::Running);
        assert_eq!(state_text(&starting), "starting");
        let stopping = session(ObservedState::Running, DesiredState::Stopped);
        assert_eq!(state_text(&stopping), "running -> stopped");
        let failed = session(ObservedState::Failed, DesiredState::Running);
        assert_eq!(state_text(&failed), "failed");
    }

    #[test]
    fn sessions_as_json_have_every_field() {
        let mut s = session(ObservedState::Running, DesiredState::Running);
        s.host = "10.0.0.5".into();
        s.port = 32768;
        let v = session_json(&s);
        assert_eq!(v["observed_state"], "running");
        assert_eq!(v["desired_state"], "running");
        assert_eq!(v["created_at"], "2023-11-14T22:13:20Z");
        assert!(v["expires_at"].is_null());
        assert_eq!(v["port"], 32768);
        assert_eq!(v.as_object().map(|o| o.len()), Some(19));
        assert_eq!(address(&s), "10.0.0.5:32768");
    }

    #[test]
    fn tables_and_lines() {
        let s = session(ObservedState::Starting, DesiredState::Running);
        let table = session_table(std::slice::from_ref(&s)).render();
        let mut lines = table.lines();
        assert!(lines.next().is_some_and(|h| h.starts_with("ID  USER")));
        let row: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            row,
            vec![
                "s1",
                "u1",
                "kasmweb/chrome:1",
                "starting",
                "-",
                "2023-11-14T22:13:20Z",
                "-"
            ]
        );
        assert_eq!(
            watch_line(&s),
            "22:14:21  starting    40%  pulling the image"
        );
        let mut running = session(ObservedState::Running, DesiredState::Running);
        running.agent_id = "node-1".into();
        running.host = "h".into();
        running.port = 1;
        assert_eq!(
            running_line(&running),
            "session s1 is running on agent node-1 at h:1"
        );
        assert_eq!(
            action_line(
                "stop",
                &session(ObservedState::Running, DesiredState::Stopped)
            ),
            "session s1: stop requested (now running -> stopped)"
        );
    }

    #[test]
    fn keepalives_say_whether_the_deadline_moved() {
        let k = KeepaliveResponse {
            expires_at: ts(1_700_000_000),
            extended: false,
            message: "session_time_limit applies".into(),
        };
        assert_eq!(
            keepalive_text("s1", &k),
            "session s1: not extended; it ends at 2023-11-14T22:13:20Z (session_time_limit applies)"
        );
        assert_eq!(keepalive_json("s1", &k)["extended"], false);
    }

    #[test]
    fn explanations() {
        let e = SessionExplanation {
            session: Some(session(ObservedState::Running, DesiredState::Running)),
            reasons: vec!["kept alive by its client".into()],
            ending_rule: "keepalive".into(),
            ends_at: ts(1_700_000_000),
            action: "delete".into(),
        };
        let v = explanation_json(&e);
        assert_eq!(v["session"]["id"], "s1");
        assert_eq!(v["reasons"][0], "kept alive by its client");
        assert_eq!(v["ends_at"], "2023-11-14T22:13:20Z");
        let fields = explanation_fields(&e);
        assert!(fields.contains(&("ends by", "keepalive".to_owned())));
        assert!(fields.contains(&("then", "delete".to_owned())));
    }
}
