//! A fresh, empty database per measured host, so no run sees another's rows: a SQLite file in
//! the run's scratch directory, or a new database on the PostgreSQL server given by URL.

use sqlx::Connection;
use std::path::Path;

#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// URL of a database on the server (new databases are created beside it).
    Postgres(String),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// A new empty database; `label` names it.
    pub async fn fresh(&self, scratch: &Path, label: &str) -> anyhow::Result<String> {
        match self {
            // Unique like the PostgreSQL name: row 6 measures two builds with one label, and a
            // build must not open a file another (newer) build migrated.
            Backend::Sqlite => Ok(format!(
                "sqlite://{}?mode=rwc",
                scratch
                    .join(format!("{label}-{}.db", uuid::Uuid::new_v4().simple()))
                    .display()
            )),
            Backend::Postgres(url) => {
                sqlx::any::install_default_drivers();
                // A uuid in a fixed prefix: nothing of the caller's reaches the SQL text.
                let name = format!("bench_{label}_{}", uuid::Uuid::new_v4().simple())
                    .replace(['-', '.'], "_");
                let mut conn = sqlx::AnyConnection::connect(url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await?;
                let (base, _) = url
                    .rsplit_once('/')
                    .ok_or_else(|| anyhow::anyhow!("a PostgreSQL URL ends in /<database>"))?;
                Ok(format!("{base}/{name}"))
            }
        }
    }

    /// Drops what [`Backend::fresh`] created on PostgreSQL (SQLite files go with the scratch dir).
    pub async fn drop_database(&self, fresh_url: &str) {
        if let Backend::Postgres(url) = self
            && let Some((_, name)) = fresh_url.rsplit_once('/')
            && let Ok(mut conn) = sqlx::AnyConnection::connect(url).await
        {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}
