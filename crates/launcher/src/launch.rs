//! Start-up: secrets and the local CA, every port bound before anything starts, each role built
//! and wired to the others, then served, and start-up waits until every role reports SERVING.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use atrium_heartbeat::{HeartbeatStore, MemoryHeartbeats, RedisHeartbeats};
use atrium_service_kit::pki::LocalCa;
use atrium_service_kit::tasks::TaskSet;
use atrium_service_kit::{Shutdown, metrics, server};

use crate::billing_usage;
use crate::config::{LaunchConfig, MetricsPorts};
use crate::gateway;
use crate::ready;
use crate::role::Role;
use crate::running::{Bound, Running};
use crate::secrets::LocalSecrets;
use crate::services::{self, Listeners, Serving, Wiring};
use crate::session_manager;
use crate::storage;

/// Starts sets of roles in this process.
pub struct Launcher;

/// Where the roles started here are reached from this process: loopback when they listen on
/// every interface.
pub(crate) fn dial_host(host: IpAddr) -> IpAddr {
    match host {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// Refuses roles this build cannot run, and roles whose required peers are neither started
/// here nor given as external endpoints, before anything is created or bound.
fn refuse_unrunnable(roles: &BTreeSet<Role>, config: &LaunchConfig) -> anyhow::Result<()> {
    for role in roles {
        anyhow::ensure!(role.is_built(), "{role} is not built yet");
    }
    for role in roles {
        for needed in role.requires() {
            anyhow::ensure!(
                roles.contains(needed) || config.external.contains_key(needed),
                "{role} needs {needed}: start the {needed} role too, or give its endpoint"
            );
        }
    }
    Ok(())
}

async fn bind(config: &LaunchConfig, role: Role) -> anyhow::Result<Listeners> {
    let addr = SocketAddr::new(config.host, config.port(role));
    let grpc = server::bind(addr)
        .await
        .with_context(|| format!("the {role} port {} is taken", addr.port()))?;
    let metrics_addr = match config.metrics {
        MetricsPorts::Off => None,
        MetricsPorts::Base(base) => {
            Some(SocketAddr::new(config.host, base + role.metrics_offset()))
        }
        MetricsPorts::Ephemeral => Some(SocketAddr::new(config.host, 0)),
    };
    let metrics = metrics::bind(metrics_addr).await.with_context(|| {
        format!(
            "the {role} metrics port {} is taken",
            metrics_addr.map(|a| a.port()).unwrap_or_default()
        )
    })?;
    Ok(Listeners { grpc, metrics })
}

impl Launcher {
    /// Starts `roles` (each once, in dependency order), wired to each other and to
    /// `config.external`, and returns once every one reports SERVING. If one fails to start or
    /// stops during start-up, the others are stopped and its error returned.
    pub async fn start(config: LaunchConfig, roles: &[Role]) -> anyhow::Result<Running> {
        config.validate(roles)?;
        let roles: BTreeSet<Role> = roles.iter().copied().collect();
        anyhow::ensure!(!roles.is_empty(), "no roles to start");
        refuse_unrunnable(&roles, &config)?;

        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("create {}", config.data_dir.display()))?;
        let data_dir = config
            .data_dir
            .canonicalize()
            .context("resolve the data directory")?;
        let secrets = LocalSecrets::load_or_create(&data_dir)?;
        // A local CA and a certificate per service, made on first start: every port speaks
        // TLS and services prove who they are to each other.
        let ca_dir = config
            .ca_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("tls"));
        let ca = LocalCa::ensure(&ca_dir).context("set up the local CA")?;

        // Every port first, so a taken port fails before anything starts.
        let mut listeners = BTreeMap::new();
        let mut bound = BTreeMap::new();
        let dial = dial_host(config.host);
        for role in &roles {
            let role_listeners = bind(&config, *role).await?;
            let addr = SocketAddr::new(dial, role_listeners.grpc.local_addr()?.port());
            let metrics = match &role_listeners.metrics {
                Some(listener) => Some(SocketAddr::new(dial, listener.local_addr()?.port())),
                None => None,
            };
            bound.insert(*role, Bound { addr, metrics });
            listeners.insert(*role, role_listeners);
        }
        let mut endpoints = config.external.clone();
        for (role, at) in &bound {
            let scheme = match role {
                Role::Gateway if gateway::plain_http(config.host) => "http",
                _ => "https",
            };
            endpoints.insert(*role, format!("{scheme}://{}", at.addr));
        }

        let with_databases: Vec<Role> =
            roles.iter().copied().filter(|r| r.has_database()).collect();
        storage::ensure_databases(&config.storage, &with_databases).await?;

        // One heartbeat store for the agent and the session-manager of this process.
        let heartbeats: Option<Arc<dyn HeartbeatStore>> =
            if roles.contains(&Role::Agent) || roles.contains(&Role::SessionManager) {
                Some(match &config.redis_url {
                    Some(url) => Arc::new(
                        RedisHeartbeats::with_namespace(url.expose(), &config.redis_namespace)
                            .context("set up Redis heartbeats")?,
                    ),
                    None => Arc::new(MemoryHeartbeats::new()),
                })
            } else {
                None
            };

        let shutdown = Shutdown::new();
        let wiring = Wiring {
            config: &config,
            data_dir: &data_dir,
            ca_dir: &ca_dir,
            secrets: &secrets,
            endpoints: &endpoints,
            heartbeats: heartbeats.clone(),
            shutdown: &shutdown,
        };
        // Built in start-up order (`Role`'s order): identity first, for its key set;
        // billing-usage before the session-manager, which is wired to it. Readiness is
        // awaited in the same order.
        let mut serving: Vec<(Role, Serving)> = Vec::new();
        let mut admin = None;
        let mut identity_keys = None;
        for role in &roles {
            let Some(role_listeners) = listeners.remove(role) else {
                continue;
            };
            let future = match role {
                Role::Identity => {
                    let (future, bootstrap, keys) =
                        services::identity(&wiring, role_listeners).await?;
                    admin = bootstrap;
                    identity_keys = Some(keys);
                    future
                }
                Role::Policy => {
                    let keys = identity_keys
                        .clone()
                        .filter(|_| config.share_verification_keys);
                    services::policy(&wiring, role_listeners, keys).await?
                }
                Role::BillingUsage => {
                    let keys = identity_keys
                        .clone()
                        .filter(|_| config.share_verification_keys);
                    billing_usage::start(&wiring, role_listeners, keys).await?
                }
                Role::SessionManager => {
                    let keys = identity_keys
                        .clone()
                        .filter(|_| config.share_verification_keys);
                    session_manager::start(&wiring, role_listeners, keys).await?
                }
                Role::Agent => services::agent(&wiring, role_listeners)?,
                Role::Gateway => {
                    let keys = identity_keys
                        .clone()
                        .filter(|_| config.share_verification_keys);
                    gateway::start(&wiring, role_listeners, keys).await?
                }
            };
            serving.push((*role, future));
        }

        let mut tasks = TaskSet::with_signal(shutdown.clone());
        for (role, future) in serving {
            tasks.spawn(role.name(), future);
        }
        let admin_password = config.admin_password.clone().or_else(|| {
            admin
                .as_ref()
                .and_then(|a| a.generated_password.clone())
                .map(atrium_service_kit::Secret::new)
        });
        let running = Running::new(
            crate::running::Parts {
                roles: roles.into_iter().collect(),
                bound,
                endpoints,
                data_dir,
                ca_path: ca.ca_path(),
                ca_dir,
                admin,
                admin_password,
                heartbeats,
                shutdown,
                stop_deadline: config.shutdown_deadline + crate::running::DRAIN_MARGIN,
            },
            tasks,
        );
        ready::wait(running, config.ready_timeout, config.wait_for_docker).await
    }
}
