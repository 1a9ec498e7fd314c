//! A session's two states: what was asked for ([`DesiredState`]) and what the agent holds
//! ([`ObservedState`]). Stored as their lowercase names.

use std::fmt;
use std::str::FromStr;

use atrium_proto::session::v1 as pb;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DesiredState {
    Running,
    Paused,
    Stopped,
    Deleted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObservedState {
    Requested,
    Starting,
    Running,
    Pausing,
    Paused,
    Stopping,
    Stopped,
    Deleting,
    Deleted,
    Failed,
    Lost,
}

impl DesiredState {
    pub const ALL: [DesiredState; 4] = [Self::Running, Self::Paused, Self::Stopped, Self::Deleted];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
            Self::Deleted => "deleted",
        }
    }

    pub fn to_proto(self) -> pb::DesiredState {
        match self {
            Self::Running => pb::DesiredState::Running,
            Self::Paused => pb::DesiredState::Paused,
            Self::Stopped => pb::DesiredState::Stopped,
            Self::Deleted => pb::DesiredState::Deleted,
        }
    }
}

impl ObservedState {
    pub const ALL: [ObservedState; 11] = [
        Self::Requested,
        Self::Starting,
        Self::Running,
        Self::Pausing,
        Self::Paused,
        Self::Stopping,
        Self::Stopped,
        Self::Deleting,
        Self::Deleted,
        Self::Failed,
        Self::Lost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Pausing => "pausing",
            Self::Paused => "paused",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
            Self::Failed => "failed",
            Self::Lost => "lost",
        }
    }

    /// Nothing more happens to the session: it is gone, or failed and left for a delete.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Deleted | Self::Failed)
    }

    /// An operation is under way; each such state has a timeout.
    pub fn is_transitional(self) -> bool {
        matches!(
            self,
            Self::Requested | Self::Starting | Self::Pausing | Self::Stopping | Self::Deleting
        )
    }

    /// The session holds (or may hold) a container on its agent, so its resources stay
    /// reserved there.
    pub fn holds_resources(self) -> bool {
        !matches!(self, Self::Deleted | Self::Failed | Self::Lost)
    }

    pub fn to_proto(self) -> pb::ObservedState {
        match self {
            Self::Requested => pb::ObservedState::Requested,
            Self::Starting => pb::ObservedState::Starting,
            Self::Running => pb::ObservedState::Running,
            Self::Pausing => pb::ObservedState::Pausing,
            Self::Paused => pb::ObservedState::Paused,
            Self::Stopping => pb::ObservedState::Stopping,
            Self::Stopped => pb::ObservedState::Stopped,
            Self::Deleting => pb::ObservedState::Deleting,
            Self::Deleted => pb::ObservedState::Deleted,
            Self::Failed => pb::ObservedState::Failed,
            Self::Lost => pb::ObservedState::Lost,
        }
    }

    pub fn from_proto(state: pb::ObservedState) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.to_proto() == state)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for DesiredState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

impl FromStr for ObservedState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

impl fmt::Display for DesiredState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ObservedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in DesiredState::ALL {
            assert_eq!(d.as_str().parse::<DesiredState>(), Ok(d));
        }
        for o in ObservedState::ALL {
            assert_eq!(o.as_str().parse::<ObservedState>(), Ok(o));
            assert_eq!(ObservedState::from_proto(o.to_proto()), Some(o));
        }
        assert!("runing".parse::<DesiredState>().is_err());
    }
}
