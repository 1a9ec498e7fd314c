//! Billing-usage's figures, each against a baseline measured in the same run:
//!
//! - Ingestion: events/s through the real consumer (IngestEvents over mutual TLS as the
//!   session-manager, one caller, batches of 5000) ÷ plain multi-row INSERTs of the same rows
//!   in the same batches into `bench_plain_events`, a copy of `usage_events` (its columns,
//!   primary key and index) in the same PostgreSQL database. The two alternate every 100,000
//!   events, so both tables grow together to 1,000,000 rows; this run also seeds the ledger.
//! - CheckUsage for a user whose per_group monthly usage_limit comes from a group with about a
//!   thousand sessions in the ledger (some of them open), as the session-manager: one caller's
//!   p50/p99 against the same server's no-op (health Check, one caller), and 50 callers in a
//!   closed loop against the no-op at 50 callers over the same connections. Then one caller on a
//!   second billing-usage replica of the same ledger with the usage cache off
//!   (`usage_cache_ms = 0`): the database path on 1M ledger rows, beside its baseline, the
//!   store's two reads called in this process.
//!
//!   scripts/bench-usage [--events N] [--batch N]
//!
//! (the script starts PostgreSQL like scripts/test and runs this in release mode).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use atrium_billing_usage::store::{self, Store};
use atrium_billing_usage::window::{self, Interval};
use atrium_integration_tests::{Role, Sandbox, TestUser, user_with_settings};
use atrium_launcher::Caller;
use atrium_proto::usage::v1 as pb;
use atrium_proto::usage::v1::usage_service_client::UsageServiceClient;
use atrium_service_kit::auth::ServiceId;
use chrono::{Datelike, Months, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::ledger::Ledger;

mod ledger;

/// The allocator the service binaries link (the services run in this process).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Ingestion alternates between the baseline and the consumer every this many events.
const SEGMENT: usize = 100_000;
const CALLERS: usize = 50;
/// The callers share two HTTP/2 connections, as two session-manager replicas would.
const CONNECTIONS: usize = 2;
const SERIAL_WARM_UP: usize = 200;
const SERIAL_CALLS: usize = 2_000;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURED: Duration = Duration::from_secs(8);
const LIMIT: &str = r#"{"type":"per_group","interval":"monthly","hours":1000}"#;

fn tz() -> window::Tz {
    window::parse_timezone("UTC").unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Throughput and latency of one measurement.
struct Figure {
    rate: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Figure {
    fn of(mut samples: Vec<Duration>, elapsed: Duration) -> Self {
        samples.sort();
        Figure {
            rate: samples.len() as f64 / elapsed.as_secs_f64(),
            p50: percentile(&samples, 0.5),
            p99: percentile(&samples, 0.99),
            max: *samples.last().unwrap(),
        }
    }

    fn print(&self, label: &str) {
        println!(
            "  {label:<52} {:>8.0}/s  p50 {:>6.3} ms  p99 {:>6.3} ms  max {:>7.3} ms",
            self.rate,
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        );
    }
}

/// One caller: `SERIAL_WARM_UP` calls, then `SERIAL_CALLS` timed one after another.
async fn serial<F, Fut>(mut call: F) -> Figure
where
    F: FnMut() -> Fut,
    Fut: Future,
{
    for _ in 0..SERIAL_WARM_UP {
        call().await;
    }
    let mut samples = Vec::with_capacity(SERIAL_CALLS);
    let started = Instant::now();
    for _ in 0..SERIAL_CALLS {
        let t = Instant::now();
        call().await;
        samples.push(t.elapsed());
    }
    Figure::of(samples, started.elapsed())
}

/// `CALLERS` tasks in a closed loop (each calls again as soon as its reply arrives) for
/// `MEASURED` after `WARM_UP`.
async fn closed_loop<F, G, Fut>(make: F) -> Figure
where
    F: Fn(usize) -> G,
    G: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let begin = Instant::now();
    let (measured_from, deadline) = (begin + WARM_UP, begin + WARM_UP + MEASURED);
    let tasks: Vec<_> = (0..CALLERS)
        .map(|i| {
            let mut call = make(i);
            tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let t = Instant::now();
                    if t >= deadline {
                        return samples;
                    }
                    call().await;
                    if t >= measured_from {
                        samples.push(t.elapsed());
                    }
                }
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.unwrap());
    }
    Figure::of(samples, MEASURED)
}

async fn check(client: &UsageServiceClient<Channel>, user_id: &str) -> pb::UsageCheck {
    client
        .clone()
        .check_usage(pb::CheckUsageRequest {
            user_id: user_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn health(client: &HealthClient<Channel>) {
    let reply = client
        .clone()
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(reply.into_inner().status, ServingStatus::Serving as i32);
}

/// `CONNECTIONS` channels to billing-usage as the session-manager.
async fn channels(sandbox: &Sandbox) -> Vec<Channel> {
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(
            sandbox
                .running()
                .channel(
                    Role::BillingUsage,
                    &Caller::Service(ServiceId::SessionManager),
                )
                .await
                .unwrap(),
        );
    }
    channels
}

/// The billing-usage database of `sandbox`, for the baseline table and the store's reads.
async fn ledger_db(sandbox: &Sandbox) -> DatabaseConnection {
    let prefix = sandbox.database_prefix().expect("a sandbox on PostgreSQL");
    let admin_url = std::env::var("ATRIUM_TEST_POSTGRES_URL").unwrap();
    let url = format!(
        "{}/{prefix}billing_usage",
        admin_url.rsplit_once('/').unwrap().0
    );
    atrium_service_kit::db::connect(&url).await.unwrap()
}

/// Alternates plain INSERTs and IngestEvents every `SEGMENT` events; prints the table. Then
/// vacuums and analyses the database (untimed), as autovacuum would in time, so that the
/// checks do not run beside a vacuum of the fresh million rows.
async fn ingest(sandbox: &Sandbox, ledger: &Ledger, batch: usize) {
    let db = ledger_db(sandbox).await;
    db.execute_unprepared("CREATE TABLE bench_plain_events (LIKE usage_events INCLUDING ALL)")
        .await
        .unwrap();
    let mut consumer = UsageServiceClient::new(channels(sandbox).await.remove(0));
    let n = ledger.events.len();
    println!(
        "ingestion of {n} events in batches of {batch}, one caller, alternating every {SEGMENT}:"
    );
    println!(
        "  {:<20} {:>16} {:>16} {:>8}",
        "events", "plain INSERT/s", "IngestEvents/s", "ratio"
    );
    let row = |label: &str, count: usize, plain: Duration, real: Duration| {
        let (p, r) = (
            count as f64 / plain.as_secs_f64(),
            count as f64 / real.as_secs_f64(),
        );
        println!("  {label:<20} {p:>16.0} {r:>16.0} {:>8.3}", r / p);
    };
    let (mut plain_total, mut real_total) = (Duration::ZERO, Duration::ZERO);
    let mut first = None;
    for (k, segment) in ledger.events.chunks(SEGMENT).enumerate() {
        let mut plain = Duration::ZERO;
        for chunk in segment.chunks(batch) {
            let statement = ledger.plain_insert(chunk);
            let t = Instant::now();
            let done = db.execute_raw(statement).await.unwrap();
            plain += t.elapsed();
            assert_eq!(done.rows_affected() as usize, chunk.len());
        }
        let mut real = Duration::ZERO;
        for chunk in segment.chunks(batch) {
            let request = pb::IngestEventsRequest {
                events: chunk.iter().map(|e| ledger.proto(e)).collect(),
            };
            let t = Instant::now();
            let answer = consumer.ingest_events(request).await.unwrap().into_inner();
            real += t.elapsed();
            assert_eq!(answer.accepted as usize, chunk.len(), "{answer:?}");
        }
        let from = k * SEGMENT;
        row(
            &format!("{from}–{}", from + segment.len()),
            segment.len(),
            plain,
            real,
        );
        first.get_or_insert((segment.len(), plain, real));
        plain_total += plain;
        real_total += real;
    }
    row(&format!("all {n}"), n, plain_total, real_total);
    if let Some((count, plain, real)) = first {
        println!(
            "  ratio IngestEvents / plain INSERT, first {count} events: {:.3}   (target ≥ 0.5)",
            plain.as_secs_f64() / real.as_secs_f64()
        );
    }
    let t = Instant::now();
    db.execute_unprepared("VACUUM (ANALYZE)").await.unwrap();
    println!(
        "  (VACUUM (ANALYZE) of the ledger database afterwards: {:?})",
        t.elapsed()
    );
    db.close().await.ok();
}

/// The benchmark user's group's usage this month, as the generator made it (for a sanity check
/// of the answers).
fn expected(ledger: &Ledger, answer: &pb::UsageCheck) -> (f64, usize) {
    let now = answer.checked_at.as_ref().map_or(0, |t| t.seconds * 1000);
    let today = Utc::now().date_naive();
    let first = today.with_day(1).unwrap();
    let next = first.checked_add_months(Months::new(1)).unwrap();
    let at = |d: chrono::NaiveDate| {
        Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
            .timestamp_millis()
    };
    let used = ledger.group_used_ms(at(first), at(next), now);
    (used as f64 / 1000.0, ledger.group_sessions().1)
}

fn describe(label: &str, answer: &pb::UsageCheck, ledger: &Ledger) {
    let (used, open) = expected(ledger, answer);
    let agrees = (answer.used_seconds - used).abs() <= 2.0 * open as f64 + 1.0
        && answer.open_sessions as usize == open;
    println!(
        "  {label}: {:?} — used {:.0} s, open {} (the generator: {used:.0} s, open {open}){}",
        answer.summary,
        answer.used_seconds,
        answer.open_sessions,
        if agrees { "" } else { "   ANSWER DIFFERS" }
    );
}

async fn checks(sandbox: &Sandbox, ledger: &Ledger, user: &TestUser) {
    let connections = channels(sandbox).await;
    let usage: Vec<_> = connections
        .iter()
        .cloned()
        .map(UsageServiceClient::new)
        .collect();
    let noop: Vec<_> = connections.iter().cloned().map(HealthClient::new).collect();
    let as_admin = sandbox
        .running()
        .usage(&Caller::User(sandbox.admin().unwrap().clone()))
        .await
        .unwrap();
    let id = user.id.as_str();
    describe("answer", &check(&usage[0], id).await, ledger);
    let noop_one = serial(|| health(&noop[0])).await;
    let check_one = serial(|| check(&usage[0], id)).await;
    let admin_one = serial(|| async {
        as_admin
            .clone()
            .check_usage(pb::CheckUsageRequest { user_id: id.into() })
            .await
            .unwrap();
    })
    .await;
    let noop_many = closed_loop(|i| {
        let client = noop[i % CONNECTIONS].clone();
        move || {
            let client = client.clone();
            async move { health(&client).await }
        }
    })
    .await;
    let check_many = closed_loop(|i| {
        let client = usage[i % CONNECTIONS].clone();
        let id = id.to_owned();
        move || {
            let (client, id) = (client.clone(), id.clone());
            async move {
                check(&client, &id).await;
            }
        }
    })
    .await;

    // A second replica of the same ledger (same databases, identity) with the usage cache off.
    // Policy comes along because the sandbox puts a launch on PostgreSQL only when identity,
    // policy or the session-manager runs in it; the assertion below checks the databases.
    let uncached = Sandbox::builder(&[Role::Policy, Role::BillingUsage])
        .join(sandbox.joined())
        .configure(|c| c.tune_billing_usage(|u| u.usage_cache_ms = 0))
        .start()
        .await
        .unwrap();
    assert_eq!(uncached.database_prefix(), sandbox.database_prefix());
    let direct = UsageServiceClient::new(channels(&uncached).await.remove(0));
    describe("answer, usage cache off", &check(&direct, id).await, ledger);
    let direct_one = serial(|| check(&direct, id)).await;
    uncached.stop().await.ok();
    // The baseline of that path: the store's two reads (the window's day totals, the open
    // sessions' charges), called in this process on the same database.
    let store = Store::open(ledger_db(sandbox).await, tz())
        .await
        .map_err(|e| e.into_anyhow())
        .unwrap();
    let subject = store::group_subject(&user.group_id);
    let reads_one = serial(|| async {
        let now = Utc::now().timestamp_millis();
        let window = window::window(Interval::Monthly, tz(), now);
        store.usage(&subject, window, now).await.unwrap()
    })
    .await;

    println!(
        "CheckUsage of a user with a per_group monthly limit, {} ledger events, as the session-manager:",
        ledger.events.len()
    );
    noop_one.print("no-op gRPC call (health Check), 1 caller");
    check_one.print("CheckUsage, 1 caller");
    admin_one.print("CheckUsage, 1 caller, as the admin (token)");
    direct_one.print("CheckUsage, 1 caller, usage cache off (2nd replica)");
    reads_one.print("  its reads in-process (Store::usage, 2 queries)");
    noop_many.print(&format!(
        "no-op gRPC call (health Check), {CALLERS} callers"
    ));
    check_many.print(&format!("CheckUsage, {CALLERS} callers"));
    println!(
        "  one caller p99: {:.3} ms (target ≤ 1 ms); usage cache off: {:.3} ms",
        ms(check_one.p99),
        ms(direct_one.p99)
    );
    println!(
        "  ratio CheckUsage / no-op, {CALLERS} callers: {:.3}   (target ≥ 0.5)",
        check_many.rate / noop_many.rate
    );
}

/// `--name N` from the command line, or `default`.
fn flag(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| {
            v.parse().unwrap_or_else(|_| panic!("{name}: not a number"))
        })
}

#[tokio::main]
async fn main() {
    let events = flag("--events", 1_000_000);
    let batch = flag("--batch", 5_000);
    assert!(
        (1..=5_000).contains(&batch),
        "--batch: 1 to 5000 (IngestEvents takes at most 5000)"
    );
    let sandbox = Sandbox::start(&[Role::Identity, Role::Policy, Role::BillingUsage])
        .await
        .unwrap();
    let admin = sandbox.admin().unwrap().clone();
    let user = user_with_settings(
        sandbox.running(),
        &admin,
        "usage",
        &[("usage_limit", LIMIT)],
    )
    .await
    .unwrap();
    let t = Instant::now();
    let ledger = Ledger::generate(events, &user, Utc::now().timestamp_millis());
    println!("generated in {:?}: {}", t.elapsed(), ledger.describe());
    ingest(&sandbox, &ledger, batch).await;
    checks(&sandbox, &ledger, &user).await;
    sandbox.stop().await.ok();
}
