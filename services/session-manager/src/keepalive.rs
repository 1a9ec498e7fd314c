//! Keepalive: moves a running session's deadline to now + the owner's keepalive_expiration in
//! one Redis round trip — unless a session_time_limit fixes the end (answered, not extended),
//! or the owner's usage allowance is spent (refused: the session ends at the deadline it has,
//! and its keepalive_expiration_action applies). billing-usage being away never makes a
//! keepalive fail: the session is extended as if no limit applied.

use atrium_proto::session::v1 as pb;
use atrium_service_kit::{ApiError, ApiResult};
use chrono::{DateTime, Utc};

use crate::core::Core;
use crate::reaper::action_done;
use crate::state::DesiredState;
use crate::store::Row;
use crate::usage::UsageStatus;

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// What a refused keepalive says: why, and how the session ends.
/// `done` is what the expiry leaves it ("stopped").
pub fn spent_refusal(reason: &str, deadline: Option<DateTime<Utc>>, done: &str) -> String {
    let ends = match deadline {
        Some(at) => format!("it ends at its keepalive deadline, {}", at.to_rfc3339()),
        None => "it ends at its keepalive deadline".into(),
    };
    format!(
        "{reason}. Keepalives no longer extend this session: {ends}, and is then {done} (keepalive_expiration_action)"
    )
}

/// Keeps `row` alive, if it may be. The caller has been authorised for it.
pub async fn keepalive(core: &Core, row: &Row) -> ApiResult<pb::KeepaliveResponse> {
    if row.desired() != DesiredState::Running || row.observed().is_terminal() {
        return Err(ApiError::FailedPrecondition(format!(
            "session {} is {}; only running sessions are kept alive",
            row.id,
            if row.desired() == DesiredState::Running {
                row.observed().as_str()
            } else {
                row.desired().as_str()
            }
        )));
    }
    let now = Utc::now();
    if let Some(hard) = row.hard_deadline() {
        return Ok(pb::KeepaliveResponse {
            expires_at: Some(ts(hard)),
            extended: false,
            message: format!(
                "session_time_limit applies: the session ends at {} whatever the keepalives",
                hard.to_rfc3339()
            ),
        });
    }
    let settings = core.owner_settings(row).await;
    // The last answer billing-usage gave (a refresh is queued when it is old): no call on
    // the keepalive path in the common case.
    let usage = core.usage.check_for_keepalive(&row.user_id).await;
    if let Some(reason) = usage.spent() {
        let deadline = core
            .deadlines
            .get(&row.id)
            .await
            .ok()
            .flatten()
            .and_then(DateTime::<Utc>::from_timestamp_millis);
        return Err(ApiError::FailedPrecondition(spent_refusal(
            &reason,
            deadline,
            action_done(&settings.keepalive_expiration_action),
        )));
    }
    let at = core.deadline_for(row, settings.keepalive_expiration_secs, now);
    let moved = match core.deadlines.extend(&row.id, at.timestamp_millis()).await {
        Ok(moved) => {
            core.deadlines_answered();
            moved
        }
        Err(e) => {
            core.deadlines_failed(&e.to_string());
            return Err(ApiError::Unavailable(format!(
                "keepalives cannot be recorded right now: {e}"
            )));
        }
    };
    if !moved {
        // Its deadline was claimed by the reaper a moment ago: it has expired.
        return Err(ApiError::FailedPrecondition(format!(
            "session {} has expired and is being ended",
            row.id
        )));
    }
    let usage_note = match &usage {
        UsageStatus::Checked(v) if v.limit.is_some() => format!("; usage: {}", v.describe()),
        _ => String::new(),
    };
    Ok(pb::KeepaliveResponse {
        expires_at: Some(ts(at)),
        extended: true,
        message: format!("kept alive until {}{usage_note}", at.to_rfc3339()),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::test_fixture::{core, row};
    use crate::usage::memory::{MemoryUsage, weekly};

    async fn admitted(core: &Core, id: &str, user: &str) -> (Row, DateTime<Utc>) {
        let r = core
            .store
            .admit(user, |_| Ok(row(id, user)), "test")
            .await
            .expect("admit");
        // A deadline a minute out, set at admission.
        let deadline = DateTime::<Utc>::from_timestamp_millis(
            (Utc::now() + chrono::Duration::seconds(60)).timestamp_millis(),
        )
        .expect("time");
        core.set_deadline(&r.id, deadline).await.expect("deadline");
        (r, deadline)
    }

    async fn deadline_of(core: &Core, id: &str) -> Option<DateTime<Utc>> {
        core.deadlines
            .get(id)
            .await
            .expect("deadline")
            .and_then(DateTime::<Utc>::from_timestamp_millis)
    }

    #[tokio::test]
    async fn a_spent_allowance_does_not_move_the_deadline() {
        let gate = Arc::new(MemoryUsage::new());
        let end = Utc::now() + chrono::Duration::days(3);
        gate.set("alice", weekly("Students", 2.0, 2.0, end));
        let (core, _db) = core(Some(gate)).await;
        let (r, deadline) = admitted(&core, "s-1", "alice").await;
        let refused = keepalive(&core, &r).await.expect_err("refused");
        let ApiError::FailedPrecondition(message) = refused else {
            panic!("expected FailedPrecondition, got {refused:?}");
        };
        assert!(
            message.starts_with(
                "usage limit spent: 2.00 of 2 hours used this week (group Students, shared by its members); it renews at"
            ),
            "{message}"
        );
        assert!(
            message.contains(&format!(
                "it ends at its keepalive deadline, {}, and is then stopped",
                deadline.to_rfc3339()
            )),
            "{message}"
        );
        assert_eq!(deadline_of(&core, &r.id).await, Some(deadline), "unmoved");
    }

    #[tokio::test]
    async fn time_left_extends_and_says_the_usage() {
        let gate = Arc::new(MemoryUsage::new());
        gate.set(
            "alice",
            weekly("Students", 2.0, 1.2, Utc::now() + chrono::Duration::days(3)),
        );
        let (core, _db) = core(Some(gate)).await;
        let (r, deadline) = admitted(&core, "s-1", "alice").await;
        let answer = keepalive(&core, &r).await.expect("kept alive");
        assert!(answer.extended);
        assert!(
            answer.message.ends_with(
                "; usage: 1.20 of 2 hours used this week (group Students, shared by its members)"
            ),
            "{}",
            answer.message
        );
        let moved = deadline_of(&core, &r.id).await.expect("deadline");
        assert!(moved > deadline + chrono::Duration::seconds(500), "{moved}");
    }

    #[tokio::test]
    async fn billing_away_or_absent_still_extends() {
        let gate = Arc::new(MemoryUsage::new());
        gate.set_down(true);
        let (core_down, _db) = core(Some(gate)).await;
        let (r, deadline) = admitted(&core_down, "s-1", "alice").await;
        let answer = keepalive(&core_down, &r).await.expect("kept alive");
        assert!(answer.extended, "{}", answer.message);
        assert!(deadline_of(&core_down, &r.id).await.expect("deadline") > deadline);

        let (core_none, _db2) = core(None).await;
        let (r, deadline) = admitted(&core_none, "s-2", "bob").await;
        let answer = keepalive(&core_none, &r).await.expect("kept alive");
        assert!(answer.extended);
        assert!(!answer.message.contains("usage"), "{}", answer.message);
        assert!(deadline_of(&core_none, &r.id).await.expect("deadline") > deadline);
    }

    #[tokio::test]
    async fn an_allowance_running_out_stops_the_next_keepalive() {
        let gate = Arc::new(MemoryUsage::new());
        let now = Utc::now();
        gate.set(
            "alice",
            crate::usage::UsageVerdict {
                exhausted_at: Some(now + chrono::Duration::milliseconds(300)),
                checked_at: Some(now),
                ..weekly("Students", 2.0, 1.99, now + chrono::Duration::days(3))
            },
        );
        let (core, _db) = core(Some(gate.clone())).await;
        let (r, _) = admitted(&core, "s-1", "alice").await;
        assert!(keepalive(&core, &r).await.expect("kept alive").extended);
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let before = deadline_of(&core, &r.id).await;
        let refused = keepalive(&core, &r).await.expect_err("spent by now");
        assert!(
            refused.to_string().starts_with("usage limit spent"),
            "{refused}"
        );
        assert_eq!(deadline_of(&core, &r.id).await, before);
        assert_eq!(gate.checks(), 1, "answered from the first check");
    }
}
