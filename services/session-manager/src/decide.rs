//! The reconciler's decision, as a pure function: from what is wanted, what was last observed
//! and what is known about the agent, the one next step. The driver ([`crate::reconciler`])
//! carries steps out; every step is idempotent, so repeating one after a crash is harmless.
//!
//! Every non-terminal observed state leads somewhere: transitional states re-inspect or fail
//! after their timeout, and a session whose agent has been gone past the grace period is lost.

use std::time::Duration;

use crate::state::{DesiredState, ObservedState};

/// What the driver knows when it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub desired: DesiredState,
    pub observed: ObservedState,
    /// The session has been placed on an agent (every admitted session has).
    pub placed: bool,
    pub agent: AgentFact,
    /// How long the session has been in its observed state.
    pub in_state_for: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentFact {
    /// Heartbeating and able to take calls.
    Alive,
    /// Heartbeating but draining: existing sessions are served, nothing new is created.
    Draining,
    /// No heartbeat for this long.
    Missing(Duration),
}

/// Limits the decision applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From requested to running.
    pub start: Duration,
    /// For pausing, stopping and deleting before the state is looked at again.
    pub operation: Duration,
    /// How long an agent may be silent before its sessions are lost.
    pub lost_grace: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do until something changes.
    Nothing,
    /// Create (and start) the container; answers the existing one when repeated.
    Create,
    /// The container exists: wait for its port to answer.
    AwaitReady,
    /// Start or unpause the container.
    Start,
    Pause,
    Stop,
    /// Remove the container; a missing container counts as removed.
    Remove,
    /// Ask the agent what it holds and adopt that as the observed state.
    Inspect,
    /// Record a state without calling the agent.
    Mark(ObservedState, String),
}

pub fn decide(f: &Facts, t: &Timeouts) -> Action {
    use DesiredState as D;
    use ObservedState as O;

    let lost_agent = matches!(f.agent, AgentFact::Missing(d) if d >= t.lost_grace);
    let agent_missing = matches!(f.agent, AgentFact::Missing(_));
    let reachable = !agent_missing;

    match (f.desired, f.observed) {
        (_, O::Deleted) => Action::Nothing,

        // Ended sessions: only a delete still has work, removing what may be left behind.
        (D::Deleted, O::Failed | O::Lost) => {
            if reachable && f.placed {
                Action::Remove
            } else if !f.placed || lost_agent {
                Action::Mark(
                    O::Deleted,
                    "deleted (its agent is gone; anything it left is removed as an orphan)".into(),
                )
            } else {
                Action::Nothing
            }
        }
        (_, O::Failed) => Action::Nothing,
        (_, O::Lost) => {
            if reachable {
                // The agent is back: adopt whatever it still holds.
                Action::Inspect
            } else {
                Action::Nothing
            }
        }

        // From here on the session is live; a silent agent makes it lost after the grace.
        _ if f.placed && lost_agent => Action::Mark(
            O::Lost,
            format!(
                "lost: its agent has sent no heartbeat for over {}s",
                t.lost_grace.as_secs()
            ),
        ),
        _ if f.placed && agent_missing => Action::Nothing,

        (D::Deleted, O::Requested) if !f.placed => {
            Action::Mark(O::Deleted, "deleted before it was placed".into())
        }
        (D::Deleted, O::Deleting) if f.in_state_for >= t.operation => Action::Inspect,
        (D::Deleted, _) => Action::Remove,

        (_, O::Requested) if !f.placed => Action::Mark(
            O::Failed,
            "failed: the session was never placed on an agent".into(),
        ),
        (_, O::Requested) if f.in_state_for >= t.start => Action::Mark(
            O::Failed,
            format!(
                "failed: not started within {}s; the agent kept refusing it",
                t.start.as_secs()
            ),
        ),
        (_, O::Requested) if f.agent == AgentFact::Draining => Action::Mark(
            O::Failed,
            "failed: its agent began draining before the session was created".into(),
        ),
        (_, O::Requested) => Action::Create,

        (_, O::Starting) if f.in_state_for >= t.start => Action::Mark(
            O::Failed,
            format!(
                "failed: the workspace did not answer within {}s of being started",
                t.start.as_secs()
            ),
        ),
        (_, O::Starting) => Action::AwaitReady,

        // A pause or stop is recorded as done when the agent answers; still in progress here
        // means the step was interrupted (a crash, a stale write): look rather than guess.
        (_, O::Pausing | O::Stopping | O::Deleting) => Action::Inspect,

        (D::Running, O::Running) => Action::Nothing,
        (D::Running, O::Paused | O::Stopped) => Action::Start,

        (D::Paused, O::Paused) => Action::Nothing,
        (D::Paused, O::Running) => Action::Pause,
        // A stopped container cannot be paused: it stays stopped, which keeps it at rest too.
        (D::Paused, O::Stopped) => Action::Nothing,

        (D::Stopped, O::Stopped) => Action::Nothing,
        (D::Stopped, O::Running | O::Paused) => Action::Stop,
    }
}

/// Whether the session needs a step now (the periodic pass skips the rest).
pub fn is_settled(desired: DesiredState, observed: ObservedState) -> bool {
    use DesiredState as D;
    use ObservedState as O;
    matches!(
        (desired, observed),
        (_, O::Deleted)
            | (D::Running, O::Running)
            | (D::Paused, O::Paused | O::Stopped)
            | (D::Stopped, O::Stopped)
            | (D::Running | D::Paused | D::Stopped, O::Failed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: Timeouts = Timeouts {
        start: Duration::from_secs(120),
        operation: Duration::from_secs(60),
        lost_grace: Duration::from_secs(30),
    };

    fn facts(desired: DesiredState, observed: ObservedState) -> Facts {
        Facts {
            desired,
            observed,
            placed: true,
            agent: AgentFact::Alive,
            in_state_for: Duration::ZERO,
        }
    }

    use DesiredState as D;
    use ObservedState as O;

    #[test]
    fn a_launch_creates_then_waits_then_rests() {
        assert_eq!(decide(&facts(D::Running, O::Requested), &T), Action::Create);
        assert_eq!(
            decide(&facts(D::Running, O::Starting), &T),
            Action::AwaitReady
        );
        assert_eq!(decide(&facts(D::Running, O::Running), &T), Action::Nothing);
    }

    #[test]
    fn intent_changes_map_to_agent_calls() {
        assert_eq!(decide(&facts(D::Paused, O::Running), &T), Action::Pause);
        assert_eq!(decide(&facts(D::Stopped, O::Running), &T), Action::Stop);
        assert_eq!(decide(&facts(D::Stopped, O::Paused), &T), Action::Stop);
        assert_eq!(decide(&facts(D::Running, O::Paused), &T), Action::Start);
        assert_eq!(decide(&facts(D::Running, O::Stopped), &T), Action::Start);
        assert_eq!(decide(&facts(D::Deleted, O::Running), &T), Action::Remove);
        assert_eq!(decide(&facts(D::Deleted, O::Requested), &T), Action::Remove);
    }

    #[test]
    fn a_slow_start_fails_with_the_reason() {
        let mut f = facts(D::Running, O::Starting);
        f.in_state_for = Duration::from_secs(121);
        match decide(&f, &T) {
            Action::Mark(O::Failed, why) => assert!(why.contains("did not answer"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_silent_agent_makes_its_sessions_lost_after_the_grace_only() {
        let mut f = facts(D::Running, O::Running);
        f.agent = AgentFact::Missing(Duration::from_secs(10));
        assert_eq!(decide(&f, &T), Action::Nothing);
        f.agent = AgentFact::Missing(Duration::from_secs(31));
        assert!(matches!(decide(&f, &T), Action::Mark(O::Lost, _)));
        // Deleting a lost session needs no agent once it is gone for good.
        f.observed = O::Lost;
        f.desired = D::Deleted;
        assert!(matches!(decide(&f, &T), Action::Mark(O::Deleted, _)));
        // The agent is back: the container is removed for real.
        f.agent = AgentFact::Alive;
        assert_eq!(decide(&f, &T), Action::Remove);
    }

    #[test]
    fn a_lost_session_is_adopted_again_when_its_agent_returns() {
        let f = facts(D::Running, O::Lost);
        assert_eq!(decide(&f, &T), Action::Inspect);
    }

    #[test]
    fn a_draining_agent_gets_no_new_container() {
        let mut f = facts(D::Running, O::Requested);
        f.agent = AgentFact::Draining;
        assert!(matches!(decide(&f, &T), Action::Mark(O::Failed, _)));
        f.observed = O::Running;
        f.desired = D::Stopped;
        assert_eq!(decide(&f, &T), Action::Stop);
    }

    fn desired() -> impl Strategy<Value = DesiredState> {
        proptest::sample::select(DesiredState::ALL.to_vec())
    }
    fn observed() -> impl Strategy<Value = ObservedState> {
        proptest::sample::select(ObservedState::ALL.to_vec())
    }
    fn agent() -> impl Strategy<Value = AgentFact> {
        prop_oneof![
            Just(AgentFact::Alive),
            Just(AgentFact::Draining),
            (0u64..100).prop_map(|s| AgentFact::Missing(Duration::from_secs(s))),
        ]
    }

    /// Applies an action's most likely outcome, as the driver would record it.
    fn outcome(f: &Facts, action: &Action) -> Option<ObservedState> {
        match action {
            Action::Nothing => None,
            Action::Create | Action::Start => Some(O::Starting),
            Action::AwaitReady => Some(O::Running),
            Action::Pause => Some(O::Paused),
            Action::Stop => Some(O::Stopped),
            Action::Remove => Some(O::Deleted),
            Action::Inspect => Some(match f.desired {
                D::Running => O::Running,
                D::Paused => O::Paused,
                D::Stopped => O::Stopped,
                D::Deleted => O::Deleted,
            }),
            Action::Mark(o, _) => Some(*o),
        }
    }

    proptest! {
        /// Every live state leads somewhere: with a live agent and calls that succeed, a
        /// session settles within a few steps, whatever it started from.
        #[test]
        fn every_session_settles(d in desired(), o in observed()) {
            let mut f = facts(d, o);
            for _ in 0..6 {
                let action = decide(&f, &T);
                match outcome(&f, &action) {
                    None => break,
                    Some(next) => { f.observed = next; f.in_state_for = Duration::ZERO; }
                }
            }
            prop_assert!(
                is_settled(f.desired, f.observed) || f.observed == O::Lost,
                "{:?} → {:?}", (d, o), f.observed
            );
        }

        /// Nothing waits forever: past every timeout, a transitional state always has a step.
        #[test]
        fn transitional_states_time_out(d in desired(), o in observed(), a in agent()) {
            prop_assume!(o.is_transitional());
            let f = Facts {
                desired: d, observed: o, placed: true, agent: a,
                in_state_for: T.start.max(T.operation) + Duration::from_secs(1),
            };
            let action = decide(&f, &T);
            let waits_for_agent = matches!(a, AgentFact::Missing(s) if s < T.lost_grace);
            prop_assert!(action != Action::Nothing || waits_for_agent, "{f:?}");
        }

        /// Nothing calls an agent that is known to be gone, and nothing ever creates a
        /// container on a draining agent.
        #[test]
        fn no_calls_to_absent_agents(d in desired(), o in observed(), a in agent(), secs in 0u64..300) {
            let f = Facts { desired: d, observed: o, placed: true, agent: a, in_state_for: Duration::from_secs(secs) };
            let action = decide(&f, &T);
            if matches!(a, AgentFact::Missing(_)) {
                prop_assert!(matches!(action, Action::Nothing | Action::Mark(..)), "{f:?} → {action:?}");
            }
            if a == AgentFact::Draining {
                prop_assert!(action != Action::Create);
            }
            if o == O::Deleted {
                prop_assert_eq!(action, Action::Nothing);
            }
        }
    }
}
