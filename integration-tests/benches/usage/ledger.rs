//! The generated ledger: sessions of 10,000 users in 200 groups over the last 60 days, their
//! lifecycle events in time order, as protos for IngestEvents and as plain INSERTs for the
//! baseline, and what the benchmark group used (to check the answers).

use std::fmt::Write as _;

use atrium_integration_tests::TestUser;
use atrium_proto::usage::v1 as pb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{DbBackend, Statement};

const USERS: usize = 10_000;
const GROUPS: usize = 200;
const WORKSPACES: usize = 20;
const AGENTS: usize = 50;
const DAYS: i64 = 60;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

struct Session {
    id: String,
    user: usize,
    workspace: usize,
    agent: usize,
    zone: usize,
    start_ms: i64,
    /// Set when its `deleted` event is in the ledger.
    end_ms: Option<i64>,
}

pub struct Event {
    id: String,
    session: usize,
    kind: &'static str,
    at_ms: i64,
}

/// The generated ledger: sessions created over the last 60 days by 10,000 users in 200 groups
/// (user `i` in group `i % 200`; group 0 is the benchmark user's), every event in time order.
pub struct Ledger {
    users: Vec<(String, String)>,
    groups: Vec<String>,
    all_users: String,
    workspaces: Vec<String>,
    zones: Vec<String>,
    sessions: Vec<Session>,
    /// In time order, as the session-manager's outbox delivers them.
    pub events: Vec<Event>,
}

fn random_uuid(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

impl Ledger {
    /// `n` events. Per session: created, running 3–30 s later, none (60 %), one (30 %) or two
    /// (10 %) pause/resume pairs, deleted. 1 % of sessions are still open (created within the
    /// last day); the rest lasted 10 min–4 h (90 %) or 4 h–3 days and ended before now.
    pub fn generate(n: usize, bench: &TestUser, now_ms: i64) -> Ledger {
        let mut rng = StdRng::seed_from_u64(20_261_128);
        let mut users: Vec<(String, String)> = (0..USERS)
            .map(|i| (random_uuid(&mut rng), format!("user-{i:05}")))
            .collect();
        users[0] = (bench.id.clone(), bench.username.clone());
        let mut groups: Vec<String> = (0..GROUPS).map(|_| random_uuid(&mut rng)).collect();
        groups[0] = bench.group_id.clone();
        let all_users = random_uuid(&mut rng);
        let workspaces = (0..WORKSPACES).map(|_| random_uuid(&mut rng)).collect();
        let mut zones: Vec<String> = (0..3).map(|_| random_uuid(&mut rng)).collect();
        zones.push(String::new());
        let mut sessions = Vec::new();
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            let (start, end) = if rng.random_bool(0.01) {
                (now_ms - rng.random_range(MINUTE..DAY), None)
            } else {
                let length = if rng.random_bool(0.9) {
                    rng.random_range(10 * MINUTE..4 * HOUR)
                } else {
                    rng.random_range(4 * HOUR..3 * DAY)
                };
                let start = rng.random_range(now_ms - DAYS * DAY..now_ms - length);
                (start, Some(start + length))
            };
            let running = start + rng.random_range(3_000..30_000);
            let mut times = vec![(start, "created"), (running, "running")];
            let pairs = match rng.random_range(0..10) {
                0..=5 => 0,
                6..=8 => 1,
                _ => 2,
            };
            let until = end.unwrap_or(now_ms);
            let mut marks: Vec<i64> = (0..2 * pairs)
                .map(|_| rng.random_range(running + 1..until))
                .collect();
            marks.sort();
            for (j, at) in marks.into_iter().enumerate() {
                times.push((
                    at,
                    if j.is_multiple_of(2) {
                        "paused"
                    } else {
                        "resumed"
                    },
                ));
            }
            if let Some(end) = end {
                times.push((end, "deleted"));
            }
            times.truncate(n - events.len());
            let session = sessions.len();
            for (at_ms, kind) in &times {
                let id = uuid::Builder::from_unix_timestamp_millis(*at_ms as u64, &rng.random())
                    .into_uuid()
                    .to_string();
                events.push(Event {
                    id,
                    session,
                    kind,
                    at_ms: *at_ms,
                });
            }
            sessions.push(Session {
                id: random_uuid(&mut rng),
                user: rng.random_range(0..USERS),
                workspace: rng.random_range(0..WORKSPACES),
                agent: rng.random_range(0..AGENTS),
                zone: rng.random_range(0..4),
                start_ms: start,
                end_ms: end.filter(|_| times.last().is_some_and(|t| t.1 == "deleted")),
            });
        }
        events.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
        Ledger {
            users,
            groups,
            all_users,
            workspaces,
            zones,
            sessions,
            events,
        }
    }

    pub fn proto(&self, e: &Event) -> pb::SessionEvent {
        let s = &self.sessions[e.session];
        let (user_id, username) = &self.users[s.user];
        pb::SessionEvent {
            id: e.id.clone(),
            session_id: s.id.clone(),
            kind: e.kind.into(),
            at: Some(prost_types::Timestamp {
                seconds: e.at_ms.div_euclid(1000),
                nanos: (e.at_ms.rem_euclid(1000) * 1_000_000) as i32,
            }),
            user_id: user_id.clone(),
            username: username.clone(),
            workspace_id: self.workspaces[s.workspace].clone(),
            agent_id: format!("agent-{:02}", s.agent),
            zone_id: self.zones[s.zone].clone(),
            group_ids: vec![self.groups[s.user % GROUPS].clone(), self.all_users.clone()],
        }
    }

    /// One multi-row INSERT of `batch` into the baseline table.
    pub fn plain_insert(&self, batch: &[Event]) -> Statement {
        let mut sql =
            String::from("INSERT INTO bench_plain_events (id, session_id, kind, at_ms) VALUES ");
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(4 * batch.len());
        for (i, e) in batch.iter().enumerate() {
            let p = 4 * i;
            let comma = if i == 0 { "" } else { "," };
            write!(sql, "{comma}(${},${},${},${})", p + 1, p + 2, p + 3, p + 4).unwrap();
            values.push(e.id.clone().into());
            values.push(self.sessions[e.session].id.clone().into());
            values.push(e.kind.into());
            values.push(e.at_ms.into());
        }
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    }

    /// The benchmark group's sessions: (all, open).
    pub fn group_sessions(&self) -> (usize, usize) {
        let mine = self
            .sessions
            .iter()
            .filter(|s| s.user.is_multiple_of(GROUPS));
        let open = mine.clone().filter(|s| s.end_ms.is_none()).count();
        (mine.count(), open)
    }

    /// What the benchmark group used in `[from, to)` up to `now_ms`: creation to deletion.
    pub fn group_used_ms(&self, from: i64, to: i64, now_ms: i64) -> i64 {
        self.sessions
            .iter()
            .filter(|s| s.user.is_multiple_of(GROUPS))
            .map(|s| {
                let end = s.end_ms.unwrap_or(now_ms).min(to);
                (end - s.start_ms.max(from)).max(0)
            })
            .sum()
    }

    /// One line about what was generated.
    pub fn describe(&self) -> String {
        let (mine, open) = self.group_sessions();
        let group_events = self
            .events
            .iter()
            .filter(|e| self.sessions[e.session].user.is_multiple_of(GROUPS))
            .count();
        let all_open = self.sessions.iter().filter(|s| s.end_ms.is_none()).count();
        format!(
            "{} events of {} sessions ({all_open} open), {USERS} users, {GROUPS} groups, {DAYS} days; \
             the benchmark user's group: {mine} sessions ({open} open), {group_events} events",
            self.events.len(),
            self.sessions.len(),
        )
    }
}
