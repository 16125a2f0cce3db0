//! Schema migrations, one folder per engine, embedded in the binary.
//!
//! Each migration runs in its own transaction together with the row that records it,
//! so a failed migration leaves the schema as it was. On PostgreSQL an advisory lock
//! keeps two servers starting at once from migrating twice.

use crate::{now_text, Engine, Result, Store};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "registry",
        sqlite: include_str!("../migrations/sqlite/0001_registry.sql"),
        postgres: include_str!("../migrations/postgres/0001_registry.sql"),
    },
    Migration {
        version: 2,
        name: "demands",
        sqlite: include_str!("../migrations/sqlite/0002_demands.sql"),
        postgres: include_str!("../migrations/postgres/0002_demands.sql"),
    },
    Migration {
        version: 3,
        name: "governance",
        sqlite: include_str!("../migrations/sqlite/0003_governance.sql"),
        postgres: include_str!("../migrations/postgres/0003_governance.sql"),
    },
    Migration {
        version: 4,
        name: "gate",
        sqlite: include_str!("../migrations/sqlite/0004_gate.sql"),
        postgres: include_str!("../migrations/postgres/0004_gate.sql"),
    },
    Migration {
        version: 5,
        name: "map",
        sqlite: include_str!("../migrations/sqlite/0005_map.sql"),
        postgres: include_str!("../migrations/postgres/0005_map.sql"),
    },
    Migration {
        version: 6,
        name: "points",
        sqlite: include_str!("../migrations/sqlite/0006_points.sql"),
        postgres: include_str!("../migrations/postgres/0006_points.sql"),
    },
    Migration {
        version: 7,
        name: "honours",
        sqlite: include_str!("../migrations/sqlite/0007_honours.sql"),
        postgres: include_str!("../migrations/postgres/0007_honours.sql"),
    },
];

pub(crate) async fn run(store: &Store) -> Result<Vec<String>> {
    let mut conn = store.writer.acquire().await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
         version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    if store.engine == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_lock(7420001)")
            .execute(&mut *conn)
            .await?;
    }
    let result = apply_pending(store.engine, &mut conn).await;
    if store.engine == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_unlock(7420001)")
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn apply_pending(engine: Engine, conn: &mut sqlx::AnyConnection) -> Result<Vec<String>> {
    use sqlx::Connection;
    let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await?;
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        let sql = match engine {
            Engine::Sqlite => m.sqlite,
            Engine::Postgres => m.postgres,
        };
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(now_text())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        applied.push(format!("{:04}_{}", m.version, m.name));
    }
    Ok(applied)
}
