//! Shutdown signalling: SIGTERM/SIGINT, or a programmatic trigger (tests, `atrium up`).

use tokio::sync::watch;

/// A cloneable shutdown signal. `trigger` fires it; `wait` resolves once it has fired.
#[derive(Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            tx: watch::Sender::new(false),
        }
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// A signal that fires when this one does, and can also fire on its own without firing
    /// this one: for a part that may stop by itself (an agent after a drain) while the rest
    /// of the process goes on. Spawns a task that lives until this signal fires.
    pub fn child(&self) -> Shutdown {
        let child = Shutdown::new();
        let (parent, forward) = (self.clone(), child.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = parent.wait() => forward.trigger(),
                _ = forward.wait() => {}
            }
        });
        child
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // Err means every sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|fired| *fired).await;
    }

    /// Fires this signal on SIGTERM or SIGINT (spawns a task).
    pub fn on_signals(&self) -> &Self {
        let this = self.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received");
            this.trigger();
        });
        self
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Shutdown;

    #[tokio::test]
    async fn a_child_follows_its_parent_but_not_the_other_way() {
        let parent = Shutdown::new();
        let child = parent.child();
        child.trigger();
        tokio::time::timeout(Duration::from_secs(1), child.wait())
            .await
            .expect("the child fired");
        assert!(!parent.is_triggered(), "the child fired its parent");

        let other = parent.child();
        parent.trigger();
        tokio::time::timeout(Duration::from_secs(1), other.wait())
            .await
            .expect("the parent's signal reached its child");
    }
}
