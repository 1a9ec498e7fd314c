//! Identity's own background work, started by `serve` and stopped by its shutdown: the
//! revocation feed (see `revocation_feed`) and retention (audit events and ended login sessions
//! past their configured age, and revocations whose tokens have all expired).

use std::time::Duration;

use atrium_service_kit::Shutdown;
use atrium_service_kit::tasks::TaskSet;
use chrono::Utc;

use crate::core::SharedCore;

/// Starts the tasks in `tasks`; each ends when the set's signal fires.
pub fn spawn(core: &SharedCore, tasks: &mut TaskSet) {
    let stop = tasks.signal();
    let feed = {
        let (core, stop) = (core.clone(), stop.clone());
        async move { core.revocations.run(core.repo.clone(), stop).await }
    };
    tasks.spawn("revocation-feed", feed);
    tasks.spawn("retention", retention(core.clone(), stop));
}

async fn retention(core: SharedCore, shutdown: Shutdown) {
    let every = Duration::from_secs(core.config.retention_interval_secs);
    loop {
        prune_once(&core).await;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// One retention pass; failures are logged and retried on the next pass.
pub async fn prune_once(core: &SharedCore) {
    let now = Utc::now();
    let days = |d: u32| chrono::Duration::days(i64::from(d));
    if core.config.audit_retention_days > 0 {
        match core
            .repo
            .prune_audit(now - days(core.config.audit_retention_days))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned old audit events"),
            Err(e) => tracing::warn!(error = %e, "pruning audit events failed"),
        }
    }
    if core.config.login_session_retention_days > 0 {
        let cutoff = now - days(core.config.login_session_retention_days);
        match core.repo.prune_login_sessions(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned ended login sessions"),
            Err(e) => tracing::warn!(error = %e, "pruning login sessions failed"),
        }
    }
    if let Err(e) = core.repo.prune_revocations(now).await {
        tracing::warn!(error = %e, "pruning revocations failed");
    }
}
