//! The roles one process can take on: Atrium's services, each with its default port.

use std::fmt;
use std::str::FromStr;

use atrium_service_kit::auth::ServiceId;

/// One of Atrium's services, as the launcher starts it.
///
/// Every service of the design is here, so a role that is not built yet is refused with a
/// clear error ([`Role::is_built`]) rather than being an unknown name. Ports follow one
/// numbering: the role's number `n` gives gRPC port `7000 + n` and metrics port `BASE + n`.
///
/// The variants are declared in start-up order, dependencies first, and the derived `Ord`
/// is that order: every set or map of roles (what a launch starts, its endpoints, readiness)
/// walks them in it. The numbering of ports is separate ([`Role::number`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Identity,
    Policy,
    /// Before the session-manager, which calls it for admission and its usage events.
    BillingUsage,
    SessionManager,
    Agent,
    /// The public entrance (HTTP): last, every service it forwards to is up by then.
    Gateway,
}

impl Role {
    /// Every role, in start-up order (dependencies first; the same order as `Ord`).
    pub const ALL: [Role; 6] = [
        Role::Identity,
        Role::Policy,
        Role::BillingUsage,
        Role::SessionManager,
        Role::Agent,
        Role::Gateway,
    ];

    /// The roles this build can run: what `atrium up` starts.
    pub fn available() -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| r.is_built()).collect()
    }

    pub fn name(self) -> &'static str {
        self.service_id().name()
    }

    /// The service identity its certificate names.
    pub fn service_id(self) -> ServiceId {
        match self {
            Role::Identity => ServiceId::Identity,
            Role::Policy => ServiceId::Policy,
            Role::SessionManager => ServiceId::SessionManager,
            Role::Agent => ServiceId::Agent,
            Role::BillingUsage => ServiceId::BillingUsage,
            Role::Gateway => ServiceId::Gateway,
        }
    }

    /// Whether this build can run it.
    pub fn is_built(self) -> bool {
        match self {
            Role::Identity
            | Role::Policy
            | Role::BillingUsage
            | Role::SessionManager
            | Role::Agent
            | Role::Gateway => true,
        }
    }

    /// The roles it cannot start without: started in the same launch (before it), or given as
    /// external endpoints. What it only uses when present (the session-manager's
    /// billing-usage, the agent's identity and policy) is not listed.
    pub fn requires(self) -> &'static [Role] {
        match self {
            Role::Identity | Role::Agent => &[],
            Role::Policy => &[Role::Identity],
            Role::BillingUsage | Role::SessionManager => &[Role::Identity, Role::Policy],
            Role::Gateway => &[Role::Identity, Role::Policy, Role::SessionManager],
        }
    }

    /// Whether it keeps a database of its own (a SQLite file, or a PostgreSQL database).
    pub fn has_database(self) -> bool {
        match self {
            Role::Identity | Role::Policy | Role::BillingUsage | Role::SessionManager => true,
            Role::Agent | Role::Gateway => false,
        }
    }

    /// The role's number: its ports are `7000 + n` (gRPC) and `metrics base + n`.
    pub fn number(self) -> u16 {
        match self {
            Role::Identity => 1,
            Role::Policy => 2,
            Role::SessionManager => 3,
            Role::Agent => 4,
            Role::BillingUsage => 5,
            Role::Gateway => 6,
        }
    }

    /// Its gRPC port unless told otherwise: identity 7001, policy 7002, session-manager 7003,
    /// agent 7004, billing-usage 7005, gateway 7006 (HTTP).
    pub fn default_port(self) -> u16 {
        7000 + self.number()
    }

    /// The offset of its `/metrics` port from the metrics base port.
    pub fn metrics_offset(self) -> u16 {
        self.number()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Role::ALL.iter().map(|r| r.name()).collect();
                anyhow::anyhow!("unknown role `{s}` (one of: {})", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ports_follow_the_numbering() {
        for role in Role::ALL {
            assert_eq!(role.name().parse::<Role>().expect("a role name"), role);
        }
        assert_eq!(Role::Identity.default_port(), 7001);
        assert_eq!(Role::Policy.default_port(), 7002);
        assert_eq!(Role::SessionManager.default_port(), 7003);
        assert_eq!(Role::Agent.default_port(), 7004);
        assert_eq!(Role::Agent.metrics_offset(), 4);
        assert_eq!(Role::BillingUsage.default_port(), 7005);
        assert_eq!(Role::BillingUsage.metrics_offset(), 5);
        let error = "nope".parse::<Role>().expect_err("not a role").to_string();
        assert!(error.contains("session-manager"), "{error}");
    }

    #[test]
    fn start_up_order_puts_every_dependency_first() {
        // `ALL` and `Ord` agree, so a set of roles starts in the order of `ALL`.
        let mut sorted = Role::ALL;
        sorted.sort();
        assert_eq!(sorted, Role::ALL);
        for role in Role::ALL {
            for needed in role.requires() {
                assert!(needed < &role, "{role} starts before {needed}");
            }
        }
        // The session-manager only uses billing-usage, but is wired to it when both start.
        assert!(Role::BillingUsage < Role::SessionManager);
        assert_eq!(
            Role::available(),
            [
                Role::Identity,
                Role::Policy,
                Role::BillingUsage,
                Role::SessionManager,
                Role::Agent,
                Role::Gateway
            ]
        );
    }
}
