//! Lianxin's storage: one interface, two engines.
//!
//! [`Store`] is the only way the rest of the platform reads or writes data. It runs
//! on embedded SQLite (the default: one file, nothing to install) or on PostgreSQL
//! (production), chosen by the database URL. Both engines run the *same* queries,
//! written in the portable subset of SQL that both understand (`$1` parameters,
//! `RETURNING`, `LIKE` prefixes, TEXT timestamps), through sqlx's `Any` driver; only
//! the schema migrations and the connection set-up differ per engine. See
//! `docs/decisions/0002-one-store-two-engines.md` for why.
//!
//! Durability: SQLite runs in WAL mode with `synchronous=FULL`, so a transaction that
//! has committed — and therefore every write the server has acknowledged — survives
//! a crash of the process or the machine. SQLite takes one writer at a time, so the
//! store keeps a one-connection writer pool beside a pool of readers, and a writer
//! task that commits concurrent writes together ([`writer`]): that serialises writes
//! in the process instead of failing them with `SQLITE_BUSY`, and pays one fsync per
//! batch instead of one per write.
//!
//! Every write goes through a transaction that also appends to the audit trail
//! ([`audit`]), so a change and its audit entry commit or fail together.

pub mod accounts;
pub mod audit;
pub mod contact;
pub mod demands;
mod error;
pub mod gate;
pub mod grids;
pub mod map;
mod migrate;
pub mod points;
pub mod points_honours;
pub mod registry;
pub mod testing;
pub mod tiers;
mod writer;

pub use error::StoreError;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn from_url(url: &str) -> Result<Engine> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            Err(StoreError::Config(
                "database URL must start with sqlite:// or postgres://".into(),
            ))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// The storage handle. Cheap to clone; all clones share the pools.
#[derive(Clone, Debug)]
pub struct Store {
    engine: Engine,
    /// Writes: a single connection on SQLite, the shared pool on PostgreSQL.
    writer: AnyPool,
    /// Reads.
    reader: AnyPool,
    /// Where audited writes go: group commit on SQLite (see [`writer`]).
    jobs: writer::Writer,
    url: String,
}

static DRIVERS: Once = Once::new();

impl Store {
    /// Connects, creating the SQLite file (and its folder) if needed, and brings the
    /// schema up to date.
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Store> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let engine = Engine::from_url(url)?;
        match engine {
            Engine::Sqlite => {
                let path = sqlite_path(url)?;
                if let Some(dir) = std::path::Path::new(&path).parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir).map_err(|e| {
                            StoreError::Config(format!(
                                "cannot create the database folder {}: {e}",
                                dir.display()
                            ))
                        })?;
                    }
                }
                let conn_url = format!("sqlite://{path}?mode=rwc");
                let opts = AnyConnectOptions::from_str(&conn_url)?.disable_statement_logging();
                let writer = sqlite_pool(1).connect_with(opts.clone()).await?;
                let reader = sqlite_pool(4).connect_with(opts).await?;
                tokio::spawn(checkpoint_wal(reader.clone()));
                Ok(Store {
                    engine,
                    jobs: writer::Writer::batched(writer.clone()),
                    writer,
                    reader,
                    url: url.to_string(),
                })
            }
            Engine::Postgres => {
                let opts = AnyConnectOptions::from_str(url)?
                    .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1))
                    .log_statements(tracing::log::LevelFilter::Trace);
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await?;
                Ok(Store {
                    engine,
                    jobs: writer::Writer::Direct(pool.clone()),
                    writer: pool.clone(),
                    reader: pool,
                    url: url.to_string(),
                })
            }
        }
    }

    /// Runs `work` in a transaction (shared with other writes on SQLite) and returns
    /// its result once it is durably committed.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut sqlx::AnyConnection) -> writer::BoxFuture<'c, Result<T>>
            + Send
            + 'static,
    {
        self.jobs.write(work).await
    }

    /// [`Store::write`] for a hot job that fails only when the database does (see
    /// [`writer::Writer::write_unguarded`]): the gate's scan log.
    pub(crate) async fn write_unguarded<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut sqlx::AnyConnection) -> writer::BoxFuture<'c, Result<T>>
            + Send
            + 'static,
    {
        self.jobs.write_unguarded(work).await
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Brings the schema up to date (idempotent).
    pub async fn migrate(&self) -> Result<Vec<String>> {
        migrate::run(self).await
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// Closes both pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// Writes a consistent copy of a live SQLite database to `dest` (which must not
    /// exist). Readers and writers carry on meanwhile.
    pub async fn backup_to(&self, dest: &std::path::Path) -> Result<()> {
        if self.engine != Engine::Sqlite {
            return Err(StoreError::Config(
                "backup copies the embedded SQLite database; for PostgreSQL use pg_dump".into(),
            ));
        }
        if dest.exists() {
            return Err(StoreError::Config(format!(
                "{} already exists; choose a new file",
                dest.display()
            )));
        }
        let dest = dest
            .to_str()
            .ok_or_else(|| StoreError::Config("backup path must be valid UTF-8".into()))?;
        // VACUUM INTO reads inside one transaction, so the copy is a snapshot.
        sqlx::query("VACUUM INTO $1")
            .bind(dest)
            .execute(&self.reader)
            .await?;
        Ok(())
    }

    pub async fn meta_get(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?)
    }

    pub async fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

/// How often the background checkpoint runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Copies the WAL back into the database file every [`CHECKPOINT_EVERY`], on a
/// reader connection, until the store is closed. SQLite's own automatic checkpoint
/// runs inside the commit that crosses its threshold: that commit — and every write
/// waiting behind the single writer — then waits for the database file's copy and
/// fsync, a stall of a hundred milliseconds or more under load. A PASSIVE checkpoint
/// takes no writer lock, so commits go on beside it; durability is unchanged (a
/// commit is durable once its WAL frames are synced, which `synchronous=FULL` does).
async fn checkpoint_wal(pool: AnyPool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "a background WAL checkpoint failed");
        }
    }
}

fn sqlite_pool(max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        // A connection to a local file does not go stale; pinging it before every use
        // would add a round trip to each query.
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // WAL lets readers run beside the writer; FULL makes each commit
                // durable before it returns; foreign keys are off by default in SQLite.
                // Case-sensitive LIKE lets SQLite use the path indexes for the scope
                // prefix (`path LIKE '/150000/150200/%'`) as a range, as PostgreSQL does.
                // The WAL is checkpointed in the background (`checkpoint_wal`), not by
                // the commit that happens to cross 1,000 pages. A 64 MiB page cache
                // (the default is 2 MiB) keeps the random-keyed indexes of a large
                // import (award ids) in memory instead of re-reading their pages; it
                // is only used as pages are touched.
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                     PRAGMA case_sensitive_like = ON; PRAGMA wal_autocheckpoint = 0; \
                     PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;",
                )
                .await?;
                Ok(())
            })
        })
}

/// The file path inside a `sqlite://PATH` or `sqlite:PATH` URL.
fn sqlite_path(url: &str) -> Result<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or_default();
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Config(
            "a SQLite URL must name a file, e.g. sqlite://./data/lianxin.db".into(),
        ));
    }
    Ok(path.to_string())
}

/// A nullable coordinate as the text bound to `CAST($n AS DOUBLE PRECISION)`.
///
/// sqlx's `Any` driver (0.8) sends a NULL `f64` to PostgreSQL with a different type
/// than a present one, and PostgreSQL then refuses the next present value for the
/// same prepared statement ("incorrect binary data format"; sqlx issue #4284). Text
/// keeps one type; Rust prints floats so that they read back exactly.
pub(crate) fn float_text(v: Option<f64>) -> Option<String> {
    v.map(|v| v.to_string())
}

/// The current time as stored: RFC 3339, UTC, milliseconds. Sorts as text.
pub fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(Engine::from_url("sqlite://x.db").unwrap(), Engine::Sqlite);
        assert_eq!(
            Engine::from_url("postgres://u@h/db").unwrap(),
            Engine::Postgres
        );
        assert!(Engine::from_url("mysql://x").is_err());
        assert_eq!(
            sqlite_path("sqlite://./data/a.db?mode=rwc").unwrap(),
            "./data/a.db"
        );
        assert_eq!(sqlite_path("sqlite:/tmp/a.db").unwrap(), "/tmp/a.db");
        assert!(sqlite_path("sqlite::memory:").is_err());
    }
}

/// The tables whose rows are valid over `[valid_from, valid_to)` and end by having
/// `valid_to` set: relations, contact-point links, grid assignments, registrations.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dated {
    Relations,
    PointLinks,
    GridHouseholds,
    Registrations,
}

/// Ends the open row `id` of `table` on `on`, inside the caller's write; `false` if it
/// had already ended (or does not exist), for the caller to refuse in its own words.
pub(crate) async fn end_open_row(
    tx: &mut sqlx::AnyConnection,
    table: Dated,
    id: i64,
    on: chrono::NaiveDate,
) -> Result<bool> {
    let table = match table {
        Dated::Relations => "relations",
        Dated::PointLinks => "point_links",
        Dated::GridHouseholds => "grid_households",
        Dated::Registrations => "registrations",
    };
    let changed = sqlx::query(&format!(
        "UPDATE {table} SET valid_to = $1 WHERE id = $2 AND valid_to IS NULL"
    ))
    .bind(on.to_string())
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(changed == 1)
}
