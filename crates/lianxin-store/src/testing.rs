//! Test support: fresh stores on every engine this machine offers.
//!
//! SQLite always (a new file in a temporary folder); PostgreSQL when
//! `LIANXIN_TEST_DATABASE_URL` is set, as a new database per store that is dropped
//! again when the [`TestStore`] is dropped. The same tests then run on both engines.

use crate::{Engine, Result, Store};

/// The environment variable naming a PostgreSQL server for tests.
pub const TEST_DATABASE_URL: &str = "LIANXIN_TEST_DATABASE_URL";

/// A store for one test, cleaned up when dropped.
pub struct TestStore {
    pub store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(#[allow(dead_code)] TempDir),
    PgDatabase { admin_url: String, name: String },
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

/// A temporary folder removed on drop (kept tiny to avoid a dependency).
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> std::io::Result<TempDir> {
        let name = format!(
            "{prefix}-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The engines to test on: always SQLite, and PostgreSQL when configured.
pub fn engines() -> Vec<Engine> {
    let mut e = vec![Engine::Sqlite];
    if std::env::var(TEST_DATABASE_URL).is_ok_and(|u| !u.is_empty()) {
        e.push(Engine::Postgres);
    }
    e
}

impl TestStore {
    pub async fn new(engine: Engine) -> Result<TestStore> {
        match engine {
            Engine::Sqlite => {
                let dir = TempDir::new("lianxin-test")
                    .map_err(|e| crate::StoreError::Config(format!("temp dir: {e}")))?;
                let url = format!("sqlite://{}", dir.0.join("test.db").display());
                let store = Store::open(&url).await?;
                Ok(TestStore {
                    store,
                    cleanup: Cleanup::Dir(dir),
                })
            }
            Engine::Postgres => {
                let admin_url = std::env::var(TEST_DATABASE_URL).map_err(|_| {
                    crate::StoreError::Config(format!("{TEST_DATABASE_URL} is not set"))
                })?;
                let name = format!("lxtest_{:016x}", rand::random::<u64>());
                let admin = Store::connect(&admin_url).await?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&admin.writer)
                    .await?;
                admin.close().await;
                let url = replace_database(&admin_url, &name);
                let store = Store::open(&url).await?;
                Ok(TestStore {
                    store,
                    cleanup: Cleanup::PgDatabase { admin_url, name },
                })
            }
        }
    }
}

/// `postgres://user@host:port/olddb?x` → `postgres://user@host:port/NEWDB?x`.
fn replace_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{db}?{q}"),
        None => format!("{host_part}/{db}"),
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Cleanup::PgDatabase { admin_url, name } = &self.cleanup {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs outside async; use a private runtime on a helper thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(admin) = Store::connect(&admin_url).await {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&admin.writer)
                            .await;
                            admin.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            super::replace_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::replace_database("postgres://h/test?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
    }
}
