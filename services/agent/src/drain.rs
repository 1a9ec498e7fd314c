//! The end of a drain: once draining (SIGTERM or the Drain call), the agent exits when it holds
//! no session containers or when the deadline passes, whichever comes first. Containers still
//! there at the deadline are left running: Docker keeps them, and the next agent on this node
//! reports them.

use std::time::{Duration, Instant};

use atrium_service_kit::Shutdown;

use crate::core::SharedCore;

const POLL: Duration = Duration::from_secs(1);

/// Waits for a drain to start and finish, then fires `shutdown`. Returns `true` when the agent
/// is exiting because of a drain, `false` when it was shut down otherwise.
pub async fn watch(core: SharedCore, shutdown: Shutdown) -> bool {
    let deadline = tokio::select! {
        deadline = core.drain_started() => deadline,
        _ = shutdown.wait() => return false,
    };
    loop {
        match core.session_containers().await {
            Ok(held) if held.is_empty() => {
                tracing::info!("drained: no session containers remain; exiting");
                break;
            }
            Ok(held) if Instant::now() >= deadline => {
                tracing::warn!(
                    remaining = held.len(),
                    "drain deadline reached; exiting with session containers still on the node"
                );
                break;
            }
            Ok(_) => {}
            Err(e) if Instant::now() >= deadline => {
                tracing::warn!(error = %e, "drain deadline reached while the engine is unreachable; exiting");
                break;
            }
            Err(e) => tracing::warn!(error = %e, "drain: could not list session containers"),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.wait() => return false,
        }
    }
    shutdown.trigger();
    true
}
