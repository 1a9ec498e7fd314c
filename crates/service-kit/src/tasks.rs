//! Named background tasks with an orderly end: a [`TaskSet`] holds a service's workers
//! (reconcilers, reapers, outboxes, watchers), each under a name. Shutdown first fires the
//! set's signal, which the tasks watch, waits for them to drain until a deadline, and only then
//! cancels the ones still running — logging each by name — and reports who finished and who was
//! cancelled. A task that ends early (an error, a panic, or returning while it was meant to run)
//! is observable through [`TaskSet::join_next`] or [`TaskSet::supervise`], so its owner can
//! stop the service instead of running on without it.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::task::{Id, JoinError, JoinHandle, JoinSet};

use crate::shutdown::Shutdown;

/// What a task may return: nothing, or a result whose error ends it as failed.
pub trait TaskResult: Send + 'static {
    fn into_result(self) -> anyhow::Result<()>;
}

impl TaskResult for () {
    fn into_result(self) -> anyhow::Result<()> {
        Ok(())
    }
}

impl<E> TaskResult for Result<(), E>
where
    E: Into<anyhow::Error> + Send + 'static,
{
    fn into_result(self) -> anyhow::Result<()> {
        self.map_err(Into::into)
    }
}

/// How a task ended.
#[derive(Debug)]
pub enum TaskOutcome {
    /// It returned normally.
    Finished,
    /// It returned an error.
    Failed(anyhow::Error),
    /// It panicked; the panic's message.
    Panicked(String),
    /// It was cancelled (after the shutdown deadline, or by an abort).
    Cancelled,
}

impl fmt::Display for TaskOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskOutcome::Finished => f.write_str("finished"),
            TaskOutcome::Failed(e) => write!(f, "failed: {e:#}"),
            TaskOutcome::Panicked(message) => write!(f, "panicked: {message}"),
            TaskOutcome::Cancelled => f.write_str("was cancelled"),
        }
    }
}

/// A task that ended, by name.
#[derive(Debug)]
pub struct TaskExit {
    pub name: String,
    pub outcome: TaskOutcome,
}

impl TaskExit {
    /// Whether it returned normally.
    pub fn is_finished(&self) -> bool {
        matches!(self.outcome, TaskOutcome::Finished)
    }

    /// The exit as an error ("task `x` panicked: ..."), for owners that stop on it.
    pub fn into_error(self) -> anyhow::Error {
        match self.outcome {
            TaskOutcome::Failed(e) => e.context(format!("task `{}` failed", self.name)),
            other => anyhow::anyhow!("task `{}` {other}", self.name),
        }
    }
}

impl fmt::Display for TaskExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task `{}` {}", self.name, self.outcome)
    }
}

/// What [`TaskSet::shutdown`] saw, by task name.
#[derive(Debug, Default)]
pub struct ShutdownReport {
    /// Returned normally within the deadline.
    pub finished: Vec<String>,
    /// Returned an error or panicked (the message) within the deadline.
    pub failed: Vec<(String, String)>,
    /// Still running at the deadline, and cancelled.
    pub cancelled: Vec<String>,
}

impl ShutdownReport {
    /// Every task finished normally within the deadline.
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty() && self.cancelled.is_empty()
    }

    fn record(&mut self, exit: TaskExit) {
        match exit.outcome {
            TaskOutcome::Finished => self.finished.push(exit.name),
            TaskOutcome::Cancelled => self.cancelled.push(exit.name),
            TaskOutcome::Failed(e) => self.failed.push((exit.name, format!("{e:#}"))),
            TaskOutcome::Panicked(message) => self.failed.push((exit.name, message)),
        }
    }
}

/// Named background tasks sharing one stop signal. Dropping the set cancels whatever still
/// runs; [`TaskSet::shutdown`] is the orderly way.
pub struct TaskSet {
    signal: Shutdown,
    tasks: JoinSet<anyhow::Result<()>>,
    names: HashMap<Id, String>,
}

impl Default for TaskSet {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskSet {
    /// A set with a signal of its own: the tasks stop when the set shuts down, after whatever
    /// the owner stops first (its server, typically).
    pub fn new() -> Self {
        Self::with_signal(Shutdown::new())
    }

    /// A set whose tasks watch `signal`, which shutting the set down fires.
    pub fn with_signal(signal: Shutdown) -> Self {
        Self {
            signal,
            tasks: JoinSet::new(),
            names: HashMap::new(),
        }
    }

    /// The signal the tasks must watch (and return on) to drain within the deadline.
    pub fn signal(&self) -> Shutdown {
        self.signal.clone()
    }

    /// How many tasks have not been reported ended yet.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Starts `task` under `name`.
    pub fn spawn<F>(&mut self, name: impl Into<String>, task: F)
    where
        F: Future + Send + 'static,
        F::Output: TaskResult,
    {
        let handle = self.tasks.spawn(async move { task.await.into_result() });
        self.names.insert(handle.id(), name.into());
    }

    /// Takes over a task spawned elsewhere (a helper that returns its [`JoinHandle`]): it is
    /// reported under `name`, and cancelling it here cancels the task itself.
    pub fn adopt<T>(&mut self, name: impl Into<String>, handle: JoinHandle<T>)
    where
        T: TaskResult,
    {
        let abort = AbortOnDrop(handle.abort_handle());
        self.spawn(name, async move {
            let outcome = handle.await;
            drop(abort);
            match outcome {
                Ok(value) => value.into_result(),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Err(anyhow::anyhow!("the adopted task was cancelled")),
            }
        });
    }

    /// The next task to end, with its name and outcome; `None` once none are left. Cancel-safe
    /// (it may be one branch of a `select!`).
    pub async fn join_next(&mut self) -> Option<TaskExit> {
        let joined = self.tasks.join_next_with_id().await?;
        Some(self.exit(joined))
    }

    fn exit(&mut self, joined: Result<(Id, anyhow::Result<()>), JoinError>) -> TaskExit {
        let (id, outcome) = match joined {
            Ok((id, Ok(()))) => (id, TaskOutcome::Finished),
            Ok((id, Err(e))) => (id, TaskOutcome::Failed(e)),
            Err(e) if e.is_panic() => {
                let id = e.id();
                (id, TaskOutcome::Panicked(panic_message(e.into_panic())))
            }
            Err(e) => (e.id(), TaskOutcome::Cancelled),
        };
        let name = self
            .names
            .remove(&id)
            .unwrap_or_else(|| format!("task {id}"));
        TaskExit { name, outcome }
    }

    /// Runs `main` (a server, say) while watching the tasks. When a task ends before the set's
    /// signal fires — an error, a panic, or a worker that should have kept running — it is
    /// logged by name, `stop` fires (so `main` winds down gracefully), and once `main` has
    /// returned the task's end is the error. Otherwise `main`'s own result.
    pub async fn supervise<F>(&mut self, main: F, stop: &Shutdown) -> anyhow::Result<()>
    where
        F: Future<Output = anyhow::Result<()>>,
    {
        tokio::pin!(main);
        let early = loop {
            tokio::select! {
                result = &mut main => return result,
                exit = self.join_next(), if !self.tasks.is_empty() => {
                    let Some(exit) = exit else { continue };
                    if self.signal.is_triggered() && exit.is_finished() {
                        continue;
                    }
                    break exit;
                }
            }
        };
        tracing::error!(task = %early.name, outcome = %early.outcome, "a background task ended early: stopping");
        stop.trigger();
        if let Err(e) = main.await {
            tracing::warn!(error = %format!("{e:#}"), "stopping after a task ended early");
        }
        Err(early.into_error())
    }

    /// Fires the signal, waits up to `deadline` for every task to return, then cancels the
    /// ones still running (each logged by name) and reports how each ended.
    pub async fn shutdown(mut self, deadline: Duration) -> ShutdownReport {
        self.signal.trigger();
        let mut report = ShutdownReport::default();
        let until = tokio::time::Instant::now() + deadline;
        loop {
            match tokio::time::timeout_at(until, self.join_next()).await {
                Ok(Some(exit)) => {
                    log_exit(&exit);
                    report.record(exit);
                }
                Ok(None) => return report,
                Err(_) => break,
            }
        }
        self.tasks.abort_all();
        while let Some(exit) = self.join_next().await {
            if matches!(exit.outcome, TaskOutcome::Cancelled) {
                tracing::warn!(task = %exit.name, ?deadline, "task did not finish within the shutdown deadline: cancelled");
            } else {
                log_exit(&exit);
            }
            report.record(exit);
        }
        report
    }
}

fn log_exit(exit: &TaskExit) {
    match &exit.outcome {
        TaskOutcome::Finished => tracing::debug!(task = %exit.name, "task finished"),
        TaskOutcome::Cancelled => tracing::warn!(task = %exit.name, "task was cancelled"),
        outcome => tracing::error!(task = %exit.name, %outcome, "task ended badly"),
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic".to_owned()
    }
}

/// Cancels an adopted task when its stand-in in the set is cancelled.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A worker that returns once `signal` fires, after `linger`.
    async fn worker(signal: Shutdown, linger: Duration) {
        signal.wait().await;
        tokio::time::sleep(linger).await;
    }

    async fn explode(message: &'static str) {
        panic!("{message}")
    }

    #[tokio::test]
    async fn tasks_that_watch_the_signal_drain_within_the_deadline() {
        let mut set = TaskSet::new();
        set.spawn("reaper", worker(set.signal(), Duration::ZERO));
        set.spawn("outbox", worker(set.signal(), Duration::from_millis(50)));
        let report = set.shutdown(Duration::from_secs(5)).await;
        let mut finished = report.finished.clone();
        finished.sort();
        assert_eq!(finished, ["outbox", "reaper"]);
        assert!(report.cancelled.is_empty() && report.failed.is_empty());
        assert!(report.is_clean());
    }

    #[tokio::test]
    async fn tasks_still_running_at_the_deadline_are_cancelled_by_name() {
        let mut set = TaskSet::new();
        set.spawn("quick", worker(set.signal(), Duration::ZERO));
        // Ignores the signal.
        set.spawn("stubborn", std::future::pending::<()>());
        let started = tokio::time::Instant::now();
        let report = set.shutdown(Duration::from_millis(200)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(report.finished, ["quick"]);
        assert_eq!(report.cancelled, ["stubborn"]);
        assert!(!report.is_clean());
    }

    #[tokio::test]
    async fn a_panic_and_an_error_are_reported_by_name() {
        let mut set = TaskSet::new();
        set.spawn("fragile", explode("boom"));
        let exit = set.join_next().await.expect("a task ended");
        assert_eq!(exit.name, "fragile");
        assert!(matches!(&exit.outcome, TaskOutcome::Panicked(m) if m == "boom"));
        assert!(exit.to_string().contains("fragile"), "{exit}");

        set.spawn("failing", async {
            Err::<(), _>(anyhow::anyhow!("no database"))
        });
        let exit = set.join_next().await.expect("a task ended");
        assert_eq!(exit.name, "failing");
        let error = format!("{:#}", exit.into_error());
        assert!(
            error.contains("failing") && error.contains("no database"),
            "{error}"
        );
        assert!(set.join_next().await.is_none());
    }

    #[tokio::test]
    async fn failures_during_shutdown_are_reported() {
        let mut set = TaskSet::new();
        let signal = set.signal();
        set.spawn("flush", async move {
            signal.wait().await;
            Err::<(), _>(anyhow::anyhow!("flush failed"))
        });
        let report = set.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0, "flush");
        assert!(report.failed[0].1.contains("flush failed"));
    }

    #[tokio::test]
    async fn adopted_tasks_are_cancelled_with_their_stand_in() {
        let mut set = TaskSet::new();
        let ran_to_end = Arc::new(AtomicBool::new(false));
        let flag = ran_to_end.clone();
        let handle = tokio::spawn(async move {
            std::future::pending::<()>().await;
            flag.store(true, Ordering::SeqCst);
        });
        let abort = handle.abort_handle();
        set.adopt("watcher", handle);
        let report = set.shutdown(Duration::from_millis(50)).await;
        assert_eq!(report.cancelled, ["watcher"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(abort.is_finished(), "the adopted task still runs");
        assert!(!ran_to_end.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn an_adopted_panic_is_reported_as_a_panic() {
        let mut set = TaskSet::new();
        set.adopt("health", tokio::spawn(explode("probe exploded")));
        let exit = set.join_next().await.expect("a task ended");
        assert_eq!(exit.name, "health");
        assert!(matches!(&exit.outcome, TaskOutcome::Panicked(m) if m == "probe exploded"));
    }

    #[tokio::test]
    async fn supervise_stops_the_main_future_when_a_task_ends_early() {
        let mut set = TaskSet::new();
        set.spawn("feed", explode("feed broke"));
        let stop = Shutdown::new();
        let main = {
            let stop = stop.clone();
            async move {
                stop.wait().await;
                Ok(())
            }
        };
        let result = tokio::time::timeout(Duration::from_secs(5), set.supervise(main, &stop))
            .await
            .expect("supervise returns once main has stopped");
        let error = format!("{:#}", result.expect_err("the task's end is the error"));
        assert!(
            error.contains("feed") && error.contains("feed broke"),
            "{error}"
        );
        assert!(stop.is_triggered());
    }

    #[tokio::test]
    async fn supervise_returns_the_main_result_when_tasks_are_healthy() {
        let mut set = TaskSet::new();
        set.spawn("worker", worker(set.signal(), Duration::ZERO));
        let stop = Shutdown::new();
        let result = set
            .supervise(async { Err(anyhow::anyhow!("bind failed")) }, &stop)
            .await;
        assert!(format!("{:#}", result.expect_err("main's error")).contains("bind failed"));
        assert!(!stop.is_triggered());
        assert!(set.shutdown(Duration::from_secs(5)).await.is_clean());
    }
}
