//! A launch in progress: where each role is, the CA, the bootstrap administrator, and the one
//! way to end it — every role is stopped, whichever way the end comes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use atrium_heartbeat::HeartbeatStore;
use atrium_identity::BootstrapAdmin;
use atrium_service_kit::tasks::{TaskExit, TaskOutcome, TaskSet};
use atrium_service_kit::{Secret, Shutdown};

use crate::role::Role;

/// Where a role started here listens (addresses to dial from this machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub addr: SocketAddr,
    /// `/metrics`, when served.
    pub metrics: Option<SocketAddr>,
}

/// Extra time, past the services' shutdown deadline, for their background work to drain (the
/// session-manager gives its reconciler steps up to 20 s once its server has stopped).
pub(crate) const DRAIN_MARGIN: Duration = Duration::from_secs(25);

pub(crate) struct Parts {
    pub roles: Vec<Role>,
    pub bound: BTreeMap<Role, Bound>,
    pub endpoints: BTreeMap<Role, String>,
    pub data_dir: PathBuf,
    pub ca_path: PathBuf,
    pub ca_dir: PathBuf,
    pub admin: Option<BootstrapAdmin>,
    pub admin_password: Option<Secret>,
    pub heartbeats: Option<Arc<dyn HeartbeatStore>>,
    pub shutdown: Shutdown,
    /// How long stopping waits for every role before cancelling the rest.
    pub stop_deadline: Duration,
}

/// Roles running in this process. Dropping it fires their shutdown and cancels what still
/// runs; [`Running::stop`] and [`Running::wait`] end it in order.
pub struct Running {
    pub(crate) parts: Parts,
    tasks: Option<TaskSet>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.parts.shutdown.trigger();
    }
}

impl Running {
    pub(crate) fn new(parts: Parts, tasks: TaskSet) -> Self {
        Self {
            parts,
            tasks: Some(tasks),
        }
    }

    /// The roles started here, in start-up order.
    pub fn roles(&self) -> &[Role] {
        &self.parts.roles
    }

    /// Where `role` listens, if it was started here.
    pub fn bound(&self, role: Role) -> Option<Bound> {
        self.parts.bound.get(&role).copied()
    }

    /// `https://host:port` of `role`: started here, or external.
    pub fn endpoint(&self, role: Role) -> Option<String> {
        self.parts.endpoints.get(&role).cloned()
    }

    /// Every known endpoint by role.
    pub fn endpoints(&self) -> &BTreeMap<Role, String> {
        &self.parts.endpoints
    }

    /// The data directory (resolved).
    pub fn data_dir(&self) -> &Path {
        &self.parts.data_dir
    }

    /// The CA certificate every role's certificate chains to (what clients trust).
    pub fn ca_path(&self) -> &Path {
        &self.parts.ca_path
    }

    /// Where the CA and the service certificates live.
    pub fn ca_dir(&self) -> &Path {
        &self.parts.ca_dir
    }

    /// The administrator identity created on this start (a fresh database), with the password
    /// when it was generated (shown once).
    pub fn bootstrap_admin(&self) -> Option<&BootstrapAdmin> {
        self.parts.admin.as_ref()
    }

    /// The administrator's password when this launch knows it: configured, or generated on
    /// this start.
    pub fn admin_password(&self) -> Option<&Secret> {
        self.parts.admin_password.as_ref()
    }

    /// The heartbeat store the agent and session-manager of this process share.
    pub fn heartbeats(&self) -> Option<Arc<dyn HeartbeatStore>> {
        self.parts.heartbeats.clone()
    }

    /// The signal that stops every role (fire it from a signal handler, or a test).
    pub fn shutdown_signal(&self) -> Shutdown {
        self.parts.shutdown.clone()
    }

    /// Waits until shutdown is signalled or a role stops on its own, then stops every role.
    /// A role that stopped first decides the result: its error, or `Ok` when it ended cleanly.
    /// An agent that ends cleanly (after a drain) stops the process only when it was the last
    /// role: beside other roles it leaves, and they go on. After a signalled shutdown, any
    /// role that failed or had to be cancelled makes it an error.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let Some(mut tasks) = self.tasks.take() else {
            return Ok(());
        };
        let shutdown = self.parts.shutdown.clone();
        let first = loop {
            let exit = tokio::select! {
                _ = shutdown.wait() => break None,
                exit = tasks.join_next() => exit,
            };
            match exit {
                Some(exit)
                    if exit.is_finished()
                        && exit.name == Role::Agent.name()
                        && !tasks.is_empty()
                        && !shutdown.is_triggered() =>
                {
                    tracing::info!("the agent drained and stopped; the other roles go on");
                }
                exit => break exit,
            }
        };
        // A role that returned cleanly because shutdown had fired is part of the shutdown.
        let first = first.filter(|exit| !(exit.is_finished() && shutdown.is_triggered()));
        self.finish(tasks, first).await
    }

    /// Stops every role (in-flight calls get the shutdown deadline) and waits for them.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let Some(tasks) = self.tasks.take() else {
            return Ok(());
        };
        self.finish(tasks, None).await
    }

    /// For start-up: the next role to end, while roles are still coming up.
    pub(crate) async fn next_exit(&mut self) -> Option<TaskExit> {
        match self.tasks.as_mut() {
            Some(tasks) => tasks.join_next().await,
            None => std::future::pending().await,
        }
    }

    /// Stops the rest after `first` (a role that ended) or after a signalled shutdown.
    pub(crate) async fn finish(
        &mut self,
        tasks: TaskSet,
        first: Option<TaskExit>,
    ) -> anyhow::Result<()> {
        let first = first.map(|exit| {
            match &exit.outcome {
                TaskOutcome::Finished => {
                    tracing::info!(role = %exit.name, "role stopped: stopping the others")
                }
                outcome => {
                    tracing::error!(role = %exit.name, %outcome, "role failed: stopping the others")
                }
            }
            role_result(exit)
        });
        let report = tasks.shutdown(self.parts.stop_deadline).await;
        if let Some(result) = first {
            return result;
        }
        if let Some((role, error)) = report.failed.first() {
            anyhow::bail!("{role}: {error}");
        }
        if !report.cancelled.is_empty() {
            anyhow::bail!(
                "did not stop within the shutdown deadline: {}",
                report.cancelled.join(", ")
            );
        }
        Ok(())
    }
}

/// What a role's end means for the whole launch.
fn role_result(exit: TaskExit) -> anyhow::Result<()> {
    match exit.outcome {
        TaskOutcome::Finished => Ok(()),
        TaskOutcome::Failed(e) => Err(e.context(exit.name)),
        TaskOutcome::Panicked(message) => Err(anyhow::anyhow!("{} panicked: {message}", exit.name)),
        TaskOutcome::Cancelled => Err(anyhow::anyhow!("{} was cancelled", exit.name)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    fn running_with(tasks: TaskSet, shutdown: Shutdown) -> Running {
        Running::new(
            Parts {
                roles: vec![Role::Identity, Role::Policy],
                bound: BTreeMap::new(),
                endpoints: BTreeMap::new(),
                data_dir: PathBuf::new(),
                ca_path: PathBuf::new(),
                ca_dir: PathBuf::new(),
                admin: None,
                admin_password: None,
                heartbeats: None,
                shutdown,
                stop_deadline: Duration::from_millis(200),
            },
            tasks,
        )
    }

    #[tokio::test]
    async fn one_role_failing_stops_the_others_and_is_the_result() {
        let shutdown = Shutdown::new();
        let mut tasks = TaskSet::with_signal(shutdown.clone());
        let stopped_cleanly = Arc::new(AtomicBool::new(false));
        let (signal, flag) = (shutdown.clone(), stopped_cleanly.clone());
        tasks.spawn("identity", async move {
            signal.wait().await;
            flag.store(true, Ordering::SeqCst);
            anyhow::Ok(())
        });
        tasks.spawn("policy", async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err::<(), _>(anyhow::anyhow!("database gone"))
        });
        let error = running_with(tasks, shutdown.clone())
            .wait()
            .await
            .expect_err("policy's failure ends the launch");
        let message = format!("{error:#}");
        assert!(
            message.contains("policy") && message.contains("database gone"),
            "{message}"
        );
        assert!(shutdown.is_triggered());
        assert!(
            stopped_cleanly.load(Ordering::SeqCst),
            "identity was not stopped in order"
        );
    }

    #[tokio::test]
    async fn a_drained_agent_leaves_and_the_other_roles_go_on() {
        let shutdown = Shutdown::new();
        let mut tasks = TaskSet::with_signal(shutdown.clone());
        let signal = shutdown.clone();
        tasks.spawn("identity", async move {
            signal.wait().await;
            anyhow::Ok(())
        });
        tasks.spawn("agent", async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            anyhow::Ok(())
        });
        let waiting = tokio::spawn(running_with(tasks, shutdown.clone()).wait());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "the agent's drain ended the launch");
        assert!(!shutdown.is_triggered());
        shutdown.trigger();
        waiting.await.unwrap().expect("a clean stop");

        // Alone, a drained agent ends the process (a node's agent after its drain).
        let shutdown = Shutdown::new();
        let mut tasks = TaskSet::with_signal(shutdown.clone());
        tasks.spawn("agent", async { anyhow::Ok(()) });
        tokio::time::timeout(Duration::from_secs(5), running_with(tasks, shutdown).wait())
            .await
            .expect("the launch ended")
            .expect("cleanly");
    }

    #[tokio::test]
    async fn a_signalled_shutdown_ends_cleanly_or_names_who_did_not() {
        let shutdown = Shutdown::new();
        let mut tasks = TaskSet::with_signal(shutdown.clone());
        let signal = shutdown.clone();
        tasks.spawn("identity", async move { signal.wait().await });
        let running = running_with(tasks, shutdown.clone());
        shutdown.trigger();
        running.wait().await.expect("a clean stop");

        let shutdown = Shutdown::new();
        let mut tasks = TaskSet::with_signal(shutdown.clone());
        tasks.spawn("agent", std::future::pending::<()>());
        let error = running_with(tasks, shutdown)
            .stop()
            .await
            .expect_err("a role that ignores shutdown");
        assert!(error.to_string().contains("agent"), "{error:#}");
    }
}
