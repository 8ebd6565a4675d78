//! Cleanup that must finish even when the request that started it is gone.
//!
//! When Terraform dies, its connection closes and the calls in progress are dropped
//! mid-way. What they started outside the process (a builder instance, a Packer run)
//! is then cleaned up by tasks spawned from `Drop` implementations; the process waits
//! for those tasks ([`wait`]) before it exits, instead of cutting them off.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static IN_PROGRESS: AtomicUsize = AtomicUsize::new(0);

/// Counts one task until dropped, also when the task panics.
struct Tracked;

impl Tracked {
    fn new() -> Self {
        IN_PROGRESS.fetch_add(1, Ordering::SeqCst);
        Tracked
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        IN_PROGRESS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `task` on the current Tokio runtime as cleanup the process waits for.
/// Returns false (and runs nothing) outside a runtime.
pub fn spawn(task: impl Future<Output = ()> + Send + 'static) -> bool {
    let Ok(handle) = tokio::runtime::Handle::try_current() else { return false };
    let tracked = Tracked::new();
    handle.spawn(async move {
        let _tracked = tracked;
        task.await;
    });
    true
}

/// How many cleanup tasks are still running.
pub fn in_progress() -> usize {
    IN_PROGRESS.load(Ordering::SeqCst)
}

/// Waits until no cleanup task runs, or `limit`; true when all finished.
pub async fn wait(limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while in_progress() > 0 {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_returns_when_spawned_cleanup_is_done() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        assert!(spawn(async move {
            let _ = rx.await;
        }));
        assert!(!wait(Duration::from_millis(120)).await, "the task still runs");
        let _ = tx.send(());
        assert!(wait(Duration::from_secs(5)).await, "the task finished");
        assert_eq!(in_progress(), 0);
    }
}
