//! The write path: every write runs as a job in a transaction, and on SQLite many
//! concurrent jobs share one transaction (group commit).
//!
//! SQLite takes one writer at a time and a durable commit costs an fsync, so one
//! commit per request caps writes at the disk's fsync rate. Instead a single writer
//! task takes whatever jobs are waiting (up to [`MAX_BATCH`]), runs each inside its
//! own savepoint — a job that fails rolls back only its own writes — and commits the
//! batch once. Every job is answered only after that commit, so an acknowledged write
//! is on disk; if the commit fails, every job in the batch gets the error and none of
//! their writes exist. Under light load a batch is one job and nothing waits.
//!
//! PostgreSQL commits concurrent transactions in parallel (and groups their WAL
//! flushes itself), so there each job simply runs in its own transaction.

use crate::{Result, StoreError};
use futures::FutureExt;
use sqlx::{AnyConnection, AnyPool, Connection};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use tokio::sync::{mpsc, oneshot};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How many jobs one SQLite commit may carry.
pub const MAX_BATCH: usize = 128;

/// A unit of work that runs inside a transaction the writer owns.
pub(crate) trait Job: Send {
    /// Runs the work; says whether it succeeded, so its savepoint is kept or undone.
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool>;
    /// Answers the caller once the fate of the batch is known.
    fn finish(self: Box<Self>, committed: std::result::Result<(), String>);
    /// Whether the job runs in a savepoint of its own. One that does not is a job
    /// that fails only when the database itself does (an I/O error, a full disk): its
    /// failure rolls back the whole batch, which would not have committed anyway.
    fn own_savepoint(&self) -> bool;
}

struct Pending<T, F> {
    work: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
    own_savepoint: bool,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
{
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let Some(work) = self.work.take() else {
                return false;
            };
            let outcome = work(conn).await;
            let ok = outcome.is_ok();
            self.outcome = Some(outcome);
            ok
        })
    }

    fn finish(self: Box<Self>, committed: std::result::Result<(), String>) {
        let answer = match (self.outcome, committed) {
            // A job's own failure stands: nothing of it was written either way.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (Some(Ok(_)), Err(why)) => Err(StoreError::NotCommitted(why)),
            (None, _) => Err(StoreError::NotCommitted("the write did not run".into())),
        };
        let _ = self.reply.send(answer);
    }

    fn own_savepoint(&self) -> bool {
        self.own_savepoint
    }
}

/// Where writes go.
#[derive(Clone)]
pub(crate) enum Writer {
    /// SQLite: a queue to the one writer task.
    Batched(mpsc::Sender<Box<dyn Job>>),
    /// PostgreSQL: a transaction per job on the pool.
    Direct(AnyPool),
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Writer::Batched(_) => "Writer::Batched",
            Writer::Direct(_) => "Writer::Direct",
        })
    }
}

impl Writer {
    /// Starts the SQLite writer task on `pool` (which should hold one connection).
    pub(crate) fn batched(pool: AnyPool) -> Writer {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run_writer(pool, rx));
        Writer::Batched(tx)
    }

    /// Runs `work` in a transaction and returns its result once it is committed.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.submit(work, true).await
    }

    /// [`Writer::write`] for a hot, small job that can fail only when the database
    /// does (no constraint it could break, no refusal of its own): on SQLite it runs
    /// without a savepoint of its own, which saves two statements a job, and its
    /// failure rolls back the whole batch.
    pub(crate) async fn write_unguarded<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.submit(work, false).await
    }

    async fn submit<T, F>(&self, work: F, own_savepoint: bool) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        match self {
            Writer::Direct(pool) => {
                let mut tx = pool.begin().await?;
                let out = work(&mut tx).await?;
                tx.commit().await?;
                Ok(out)
            }
            Writer::Batched(queue) => {
                let (reply, answer) = oneshot::channel();
                let job = Box::new(Pending {
                    work: Some(work),
                    outcome: None,
                    reply,
                    own_savepoint,
                });
                queue
                    .send(job)
                    .await
                    .map_err(|_| StoreError::NotCommitted("the store is closed".into()))?;
                answer.await.map_err(|_| {
                    StoreError::NotCommitted("the writer stopped before answering".into())
                })?
            }
        }
    }
}

async fn run_writer(pool: AnyPool, mut queue: mpsc::Receiver<Box<dyn Job>>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = run_batch(&pool, &mut batch).await;
        if let Err(why) = &committed {
            tracing::error!(jobs = batch.len(), error = %why, "a write batch failed to commit");
        }
        for job in batch {
            job.finish(committed.clone());
        }
    }
}

async fn run_batch(pool: &AnyPool, batch: &mut [Box<dyn Job>]) -> std::result::Result<(), String> {
    let text = |e: sqlx::Error| e.to_string();
    let mut tx = pool.begin().await.map_err(text)?;
    for job in batch.iter_mut() {
        if !job.own_savepoint() {
            let ok = AssertUnwindSafe(job.run(&mut tx))
                .catch_unwind()
                .await
                .unwrap_or(false);
            if !ok {
                // Part of its writes may be in the transaction: none of the batch
                // commits, and every job in it is answered with the failure.
                let _ = tx.rollback().await;
                return Err("a write failed in the database; its batch was rolled back".into());
            }
            continue;
        }
        let mut savepoint = Connection::begin(&mut *tx).await.map_err(text)?;
        // A panicking job must not take the writer (and every later write) down.
        let ok = AssertUnwindSafe(job.run(&mut savepoint))
            .catch_unwind()
            .await
            .unwrap_or(false);
        if ok {
            savepoint.commit().await.map_err(text)?;
        } else {
            savepoint.rollback().await.map_err(text)?;
        }
    }
    tx.commit().await.map_err(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::any::AnyPoolOptions;

    /// Inserts `value`, then fails in the database if `fail`.
    fn insert(
        value: i64,
        fail: bool,
    ) -> impl for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<()>> + Send + 'static
    {
        move |c| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (v) VALUES ($1)")
                    .bind(value)
                    .execute(&mut *c)
                    .await?;
                if fail {
                    sqlx::query("INSERT INTO missing_table VALUES (1)")
                        .execute(&mut *c)
                        .await?;
                }
                Ok(())
            })
        }
    }

    /// A job inserting `value`, then failing if `fail`.
    fn job(
        value: i64,
        fail: bool,
        own_savepoint: bool,
    ) -> (Box<dyn Job>, oneshot::Receiver<Result<()>>) {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Pending {
            work: Some(insert(value, fail)),
            outcome: None,
            reply,
            own_savepoint,
        });
        (job, answer)
    }

    async fn rows(pool: &AnyPool) -> Vec<i64> {
        sqlx::query_scalar("SELECT v FROM t ORDER BY v")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_failed_job_without_its_own_savepoint_sinks_the_whole_batch() {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (v INTEGER NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        // A guarded failure rolls back only itself.
        let (a, _) = job(1, false, true);
        let (b, _) = job(2, true, true);
        let (c, _) = job(3, false, false);
        let mut batch = vec![a, b, c];
        assert!(run_batch(&pool, &mut batch).await.is_ok());
        assert_eq!(rows(&pool).await, vec![1, 3]);
        // An unguarded one takes the batch with it, its own first write included.
        let (d, d_answer) = job(4, false, true);
        let (e, e_answer) = job(5, true, false);
        let (f, _) = job(6, false, true);
        let mut batch = vec![d, e, f];
        let committed = run_batch(&pool, &mut batch).await;
        assert!(committed.is_err());
        for j in batch {
            j.finish(committed.clone());
        }
        assert_eq!(rows(&pool).await, vec![1, 3]);
        assert!(matches!(
            d_answer.await.unwrap(),
            Err(StoreError::NotCommitted(_))
        ));
        assert!(e_answer.await.unwrap().is_err());
    }
}
