//! The background scheduler of the demand loop.
//!
//! Nothing is kept in memory: every pending timer is a column of its demand
//! (`timer_at`), so the scheduler only has to look at what is due. It wakes at the
//! earliest timer (at most every [`MAX_SLEEP`], so timers set by another server
//! process are seen too), runs [`DemandDesk::tick`], and sleeps again. After a restart
//! the first tick finds every timer that fell due while the server was down.
//!
//! It also re-reads the loop's rules every [`RELOAD_EVERY`], so a change made through
//! another server process reaches this one.

use crate::desk::DemandDesk;
use std::sync::Arc;
use std::time::Duration;

/// The longest the scheduler sleeps between looks.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);
/// How often the cached routing rules, time limits and calendars are re-read.
pub const RELOAD_EVERY: chrono::Duration = chrono::Duration::minutes(1);

/// Starts the scheduler; it runs until the task is aborted.
pub fn spawn(desk: Arc<DemandDesk>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_purge = desk.now();
        let mut last_reload = desk.now();
        loop {
            if desk.now() - last_reload >= RELOAD_EVERY {
                last_reload = desk.now();
                if let Err(e) = desk.reload().await {
                    tracing::warn!(error = %e, "scheduler: cannot re-read the loop's rules");
                }
            }
            match desk.tick().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(demands = n, "scheduler: timers run"),
                Err(e) => tracing::error!(error = %e, "scheduler: tick failed"),
            }
            let now = desk.now();
            if now - last_purge > chrono::Duration::hours(1) {
                last_purge = now;
                if let Err(e) = desk
                    .store()
                    .purge_idempotency_keys(now - chrono::Duration::hours(24))
                    .await
                {
                    tracing::warn!(error = %e, "scheduler: idempotency key purge failed");
                }
            }
            let sleep = match desk.store().next_timer().await {
                Ok(Some(at)) => (at - now).to_std().unwrap_or(Duration::ZERO).min(MAX_SLEEP),
                Ok(None) => MAX_SLEEP,
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler: cannot read the next timer");
                    MAX_SLEEP
                }
            };
            // A small floor keeps a burst of due timers from spinning the loop.
            tokio::time::sleep(sleep.max(Duration::from_millis(50))).await;
        }
    })
}
