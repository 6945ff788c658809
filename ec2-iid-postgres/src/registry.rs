//! [`PostgresJoinRegistry`]: the join registry in one PostgreSQL table, shared by replicas.

use core::fmt;
use core::time::Duration;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, Pool, Runtime};
use ec2_iid::{ClaimRecord, JoinClaim, JoinRegistry};
use tokio_postgres::NoTls;

use crate::enrollment::EnrollmentSql;
use crate::error::{Operation, PostgresRegistryError};
use crate::tls::{Settings, Tls};

/// The table [`PostgresJoinRegistry::new`] uses.
pub const DEFAULT_TABLE: &str = "ec2_iid_joins";

/// The longest table name accepted, in bytes: PostgreSQL's 63-byte identifier limit minus the
/// `_expires_at_idx` suffix of the index name.
pub const MAX_TABLE_NAME_LEN: usize = 48;

/// How long a call of a registry made by [`PostgresJoinRegistry::from_config`] may take,
/// unless [`with_timeout`](PostgresJoinRegistry::with_timeout) says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(8);

/// A [`JoinRegistry`] in a PostgreSQL table, so that each launch of an instance joins once
/// across every replica (and process) that shares the database.
///
/// One row per host: `host_id text PRIMARY KEY, pending_time timestamptz, expires_at
/// timestamptz, requester bytea`, with an index on `expires_at` ([`migrate`](Self::migrate)
/// creates both). A claim is one statement, an `INSERT ... ON CONFLICT (host_id) DO UPDATE ...
/// WHERE` that replaces the row only when the stored record expired, the claim is of a newer
/// launch, or it is the same launch claimed again by the same requester
/// ([`JoinClaim::wins_over`]), and reports whether it wrote. The primary key's row lock makes
/// concurrent claims of one host serialize, whichever connection they come from, so exactly one
/// of them wins.
///
/// Times are stored with PostgreSQL's microsecond precision: two `pending_time`s less than a
/// microsecond apart count as the same launch (AWS's `pendingTime` has whole seconds).
///
/// Expired rows block nothing, but stay until [`purge_expired`](Self::purge_expired) deletes
/// them (or the host claims again). Run it now and then, from any one replica.
///
/// The registry is cheap to clone (the pool is shared) and `Send + Sync`. Its `Debug` shows
/// the pool's settings without the password.
///
/// ```no_run
/// use ec2_iid::{JoinClaim, JoinRegistry};
/// use ec2_iid_postgres::PostgresJoinRegistry;
///
/// # async fn run(claim: JoinClaim) -> Result<(), ec2_iid_postgres::PostgresRegistryError> {
/// let registry = PostgresJoinRegistry::from_config("host=db.internal user=joins dbname=joins")?
///     .with_table("my_cluster_joins")?;
/// registry.migrate().await?;
/// if registry.claim(&claim).await? {
///     println!("{} joined", claim.host_id);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PostgresJoinRegistry {
    pool: Pool,
    sql: Arc<Sql>,
    /// How [`from_config`](Self::from_config) built the pool, for
    /// [`with_timeout`](Self::with_timeout) to build it again; `None` from [`new`](Self::new).
    connect: Option<Arc<Connect>>,
}

/// The statements for one table, built once.
#[derive(Debug)]
struct Sql {
    table: String,
    claim: String,
    record: String,
    create_table: String,
    purge: String,
    /// The enrollment records' statements (their table is created with this one).
    enrollment: EnrollmentSql,
}

impl Sql {
    /// The statements for `table`, which must already be valid ([`check_table_name`]): it is
    /// quoted, so no name can be a keyword, and only `[a-z0-9_]` can reach the SQL text.
    fn new(table: &str) -> Self {
        let enrollment = EnrollmentSql::new(table);
        Self {
            table: table.to_owned(),
            claim: format!(
                "INSERT INTO \"{table}\" AS t (host_id, pending_time, expires_at, requester) \
                 VALUES ($1, $2, $3, $5) \
                 ON CONFLICT (host_id) DO UPDATE \
                 SET pending_time = EXCLUDED.pending_time, expires_at = EXCLUDED.expires_at, \
                 requester = EXCLUDED.requester \
                 WHERE t.expires_at <= $4 OR t.pending_time < EXCLUDED.pending_time \
                 OR (t.pending_time = EXCLUDED.pending_time AND t.requester = EXCLUDED.requester) \
                 RETURNING host_id"
            ),
            record: format!(
                "SELECT pending_time, expires_at, requester FROM \"{table}\" \
                 WHERE host_id = $1 AND expires_at > $2"
            ),
            // `ADD COLUMN IF NOT EXISTS`: tables made before the requester column gain it.
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS \"{table}\" (\
                 host_id text PRIMARY KEY, \
                 pending_time timestamptz NOT NULL, \
                 expires_at timestamptz NOT NULL, \
                 requester bytea); \
                 ALTER TABLE \"{table}\" ADD COLUMN IF NOT EXISTS requester bytea; \
                 CREATE INDEX IF NOT EXISTS \"{table}_expires_at_idx\" ON \"{table}\" (expires_at); \
                 {}",
                enrollment.create_table
            ),
            purge: format!("DELETE FROM \"{table}\" WHERE expires_at <= $1"),
            enrollment,
        }
    }
}

impl PostgresJoinRegistry {
    /// A registry on `pool`, in the table [`DEFAULT_TABLE`] (`ec2_iid_joins`) of the
    /// connection's default schema (its `search_path`).
    ///
    /// Nothing is sent to the server until the first call.
    #[must_use]
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            sql: Arc::new(Sql::new(DEFAULT_TABLE)),
            connect: None,
        }
    }

    /// A registry with a pool of its own (deadpool's default size), from connection settings:
    /// `host=... user=... dbname=...` or a `postgresql://` URL, as [`tokio_postgres::Config`]
    /// reads them, plus libpq's TLS settings:
    ///
    /// * `sslmode=disable`: no TLS;
    /// * `sslmode=require`: TLS, but the server's certificate is not checked (as libpq without
    ///   a root certificate): it stops passive eavesdroppers only, not an attacker on the path;
    /// * `sslmode=verify-full`: TLS, the certificate chained to `sslrootcert` (a PEM file of
    ///   CA certificates) or, without it or with `sslrootcert=system`, to the system's trusted
    ///   roots, and issued for the host name (or IP address) in the settings.
    ///
    /// Without `sslmode` it is `verify-full`, unless every host is on this machine (a
    /// loopback address, `localhost` or a Unix socket) and there is no `sslrootcert`: then it
    /// is `disable`, as the traffic does not leave the machine. TLS is rustls with aws-lc-rs.
    ///
    /// Each call is bounded by [`DEFAULT_TIMEOUT`]; see [`with_timeout`](Self::with_timeout).
    /// Nothing is sent to the server until the first call.
    ///
    /// ```
    /// use ec2_iid_postgres::PostgresJoinRegistry;
    ///
    /// let remote = PostgresJoinRegistry::from_config(
    ///     "postgresql://joins@db.internal/joins?sslmode=require",
    /// )?;
    /// let local = PostgresJoinRegistry::from_config("host=/var/run/postgresql dbname=joins")?;
    /// assert!(PostgresJoinRegistry::from_config("host=db sslmode=prefer").is_err());
    /// # Ok::<(), ec2_iid_postgres::PostgresRegistryError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`PostgresRegistryError::InvalidConfig`] if the settings do not parse, `sslmode` is
    /// another value (`prefer`, `allow` and `verify-ca` are refused), `sslrootcert` is given
    /// with `disable` or `require` (it would not be checked), or it cannot be read. The error
    /// never shows the settings.
    pub fn from_config(settings: &str) -> Result<Self, PostgresRegistryError> {
        let settings = Settings::parse(settings)?;
        let tls = settings.tls()?;
        let connect = Connect {
            config: settings.config,
            tls,
        };
        let mut registry = Self::new(connect.pool(DEFAULT_TIMEOUT)?);
        registry.connect = Some(Arc::new(connect));
        Ok(registry)
    }

    /// The same registry with each call bounded by `timeout` (instead of [`DEFAULT_TIMEOUT`]):
    /// at most a quarter of it waiting for a free pooled connection, a quarter opening one
    /// (or checking an idle one), and half for the statement, which PostgreSQL itself cancels
    /// then (`statement_timeout` and `lock_timeout`, sent at connection start-up).
    ///
    /// Because the server cancels the statement, a call that timed out did not commit: the
    /// error is [transient](PostgresRegistryError::is_transient) and a claim's retry can win.
    /// A caller with a deadline of its own (a join server answering within `--timeout`) gives
    /// the registry less than that, so that the database gives up first.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ec2_iid_postgres::PostgresJoinRegistry;
    ///
    /// let registry = PostgresJoinRegistry::from_config("host=127.0.0.1 user=joins")?
    ///     .with_timeout(Duration::from_secs(8))?;
    /// # Ok::<(), ec2_iid_postgres::PostgresRegistryError>(())
    /// ```
    ///
    /// The pool is built anew (its connections are not shared with the registry this was
    /// called on); call it once, at setup.
    ///
    /// # Errors
    ///
    /// [`PostgresRegistryError::InvalidConfig`] for a registry made by [`new`](Self::new):
    /// set the timeouts on that pool (its `Timeouts` and runtime, and `-c statement_timeout`
    /// and `-c lock_timeout` in its connection `options`).
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, PostgresRegistryError> {
        let connect = self
            .connect
            .clone()
            .ok_or_else(|| PostgresRegistryError::config(OwnPool))?;
        self.pool = connect.pool(timeout)?;
        Ok(self)
    }

    /// The same registry in another table: `table` must be a plain lowercase SQL identifier
    /// (ASCII letters `a-z`, digits and `_`, not starting with a digit) of at most
    /// [`MAX_TABLE_NAME_LEN`] bytes. The index is named `<table>_expires_at_idx`.
    ///
    /// ```
    /// use ec2_iid_postgres::PostgresJoinRegistry;
    ///
    /// // Nothing connects until the first call.
    /// let registry = PostgresJoinRegistry::from_config("host=127.0.0.1")?;
    /// assert_eq!(registry.clone().with_table("cluster_a_joins")?.table(), "cluster_a_joins");
    /// assert!(registry.with_table("joins; DROP TABLE users").is_err());
    /// # Ok::<(), ec2_iid_postgres::PostgresRegistryError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`PostgresRegistryError::InvalidTableName`] for any other name; nothing is ever quoted
    /// or escaped into the SQL.
    pub fn with_table(mut self, table: &str) -> Result<Self, PostgresRegistryError> {
        check_table_name(table)?;
        self.sql = Arc::new(Sql::new(table));
        Ok(self)
    }

    /// The table's name.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.sql.table
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The enrollment records' statements.
    pub(crate) fn enrollment_sql(&self) -> &EnrollmentSql {
        &self.sql.enrollment
    }

    /// Creates the table and its `expires_at` index if they do not exist, and the enrollment
    /// records' table `<table>_enrollments` ([`EnrollmentRegistry`](ec2_iid::EnrollmentRegistry)).
    ///
    /// Safe to run at every start, from every replica at once: it takes a transaction-scoped
    /// advisory lock, so concurrent runs do not race. It does not alter an existing table.
    ///
    /// # Errors
    ///
    /// [`PostgresRegistryError::Pool`] without a connection, [`PostgresRegistryError::Database`]
    /// if a statement fails (e.g. the user may not create tables).
    pub async fn migrate(&self) -> Result<(), PostgresRegistryError> {
        let op = Operation::Migrate;
        let db = |e| PostgresRegistryError::database(op, e);
        let mut client = self.connection(op).await?;
        let tx = client.transaction().await.map_err(db)?;
        let lock_key = format!("ec2-iid-postgres migrate {}", self.sql.table);
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock_key])
            .await
            .map_err(db)?;
        tx.batch_execute(&self.sql.create_table).await.map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// Deletes the records that expired at `now` (`expires_at <= now`) and returns how many.
    ///
    /// Expired records already count as absent; this only reclaims their space.
    ///
    /// # Errors
    ///
    /// [`PostgresRegistryError::Pool`] without a connection, [`PostgresRegistryError::Database`]
    /// if the statement fails.
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, PostgresRegistryError> {
        let op = Operation::PurgeExpired;
        let db = |e| PostgresRegistryError::database(op, e);
        let client = self.connection(op).await?;
        let statement = client.prepare_cached(&self.sql.purge).await.map_err(db)?;
        client.execute(&statement, &[&now]).await.map_err(db)
    }
}

/// What [`PostgresJoinRegistry::from_config`] builds its pool from.
struct Connect {
    /// The settings without `sslmode` and `sslrootcert` (their `ssl_mode` set).
    config: tokio_postgres::Config,
    tls: Tls,
}

/// Only the TLS connector's kind: the settings may hold a password.
impl fmt::Debug for Connect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connect")
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Connect {
    /// A pool whose calls give up within `timeout`: a quarter waiting for a slot, a quarter
    /// opening or recycling a connection, half for the statement (server-side).
    fn pool(&self, timeout: Duration) -> Result<Pool, PostgresRegistryError> {
        // 0 would turn PostgreSQL's timeouts off.
        let statement_ms = (timeout / 2).as_millis().max(1);
        let bounds = format!("-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}");
        let mut config = self.config.clone();
        // After the settings' own options (e.g. `-c search_path=...`), so that these win.
        config.options(match self.config.get_options() {
            Some(own) if !own.trim().is_empty() => format!("{own} {bounds}"),
            _ => bounds,
        });
        let manager = match &self.tls {
            Tls::None => Manager::new(config, NoTls),
            Tls::Rustls(tls) => Manager::new(config, tls.clone()),
        };
        Pool::builder(manager)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout / 4))
            .create_timeout(Some(timeout / 4))
            .recycle_timeout(Some(timeout / 4))
            .build()
            .map_err(PostgresRegistryError::config)
    }
}

/// [`PostgresJoinRegistry::with_timeout`] on a registry of [`PostgresJoinRegistry::new`].
#[derive(Debug, thiserror::Error)]
#[error(
    "with_timeout needs a registry made by from_config; on a pool of your own, set its \
     Timeouts and -c statement_timeout and -c lock_timeout in its options"
)]
struct OwnPool;

impl PostgresJoinRegistry {
    /// A connection from the pool, for `op`.
    pub(crate) async fn connection(
        &self,
        op: Operation,
    ) -> Result<deadpool_postgres::Object, PostgresRegistryError> {
        self.pool
            .get()
            .await
            .map_err(|e| PostgresRegistryError::pool(op, e))
    }
}

impl JoinRegistry for PostgresJoinRegistry {
    type Error = PostgresRegistryError;

    /// Records the claim in one statement if it wins; `Ok(true)` if it did.
    ///
    /// # Errors
    ///
    /// [`PostgresRegistryError::Pool`] without a connection, [`PostgresRegistryError::Database`]
    /// if the statement fails (SQLSTATE `42P01` until [`migrate`](Self::migrate) has run). The
    /// claim did not win then; whether it was recorded is unknown only if the connection broke
    /// after the statement was sent.
    async fn claim(&self, claim: &JoinClaim) -> Result<bool, PostgresRegistryError> {
        let op = Operation::Claim;
        let db = |e| PostgresRegistryError::database(op, e);
        let client = self.connection(op).await?;
        let statement = client.prepare_cached(&self.sql.claim).await.map_err(db)?;
        let row = client
            .query_opt(
                &statement,
                &[
                    &claim.host_id,
                    &claim.pending_time,
                    &claim.expires_at,
                    &claim.now,
                    &claim.requester.as_ref().map(<[u8; 32]>::as_slice),
                ],
            )
            .await
            .map_err(db)?;
        Ok(row.is_some())
    }

    /// Reads the host's record that has not expired at `now`, in one statement.
    ///
    /// # Errors
    ///
    /// As [`claim`](Self::claim).
    async fn record(
        &self,
        host_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimRecord>, PostgresRegistryError> {
        let op = Operation::Record;
        let db = |e| PostgresRegistryError::database(op, e);
        let client = self.connection(op).await?;
        let statement = client.prepare_cached(&self.sql.record).await.map_err(db)?;
        let Some(row) = client
            .query_opt(&statement, &[&host_id, &now])
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        let requester: Option<Vec<u8>> = row.try_get(2).map_err(db)?;
        Ok(Some(ClaimRecord::new(
            row.try_get(0).map_err(db)?,
            row.try_get(1).map_err(db)?,
            // A value of another length is no requester's: it never matches.
            requester.and_then(|bytes| bytes.try_into().ok()),
        )))
    }
}

/// Checks that `name` is a plain lowercase SQL identifier of at most [`MAX_TABLE_NAME_LEN`]
/// bytes.
fn check_table_name(name: &str) -> Result<(), PostgresRegistryError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_TABLE_NAME_LEN {
        Some("longer than 48 bytes")
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        Some("starts with a digit")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Some("only a-z, 0-9 and _ are allowed")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(PostgresRegistryError::InvalidTableName {
            name: name.chars().take(64).collect(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        for ok in ["ec2_iid_joins", "_x", "a", "t1", &"a".repeat(48)] {
            assert!(check_table_name(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            (&"a".repeat(49), "longer than 48 bytes"),
            ("1joins", "starts with a digit"),
            ("Joins", "only a-z, 0-9 and _ are allowed"),
            ("joins; drop table x", "only a-z, 0-9 and _ are allowed"),
            ("a\"b", "only a-z, 0-9 and _ are allowed"),
            ("public.joins", "only a-z, 0-9 and _ are allowed"),
            ("jöins", "only a-z, 0-9 and _ are allowed"),
        ] {
            match check_table_name(bad) {
                Err(PostgresRegistryError::InvalidTableName { name, reason }) => {
                    assert_eq!(reason, why, "{bad:?}");
                    assert_eq!(name, bad.chars().take(64).collect::<String>());
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn statements_name_the_table() {
        let sql = Sql::new("t_joins");
        assert!(sql.claim.starts_with("INSERT INTO \"t_joins\" AS t "));
        assert!(
            sql.create_table
                .contains("\"t_joins_expires_at_idx\" ON \"t_joins\"")
        );
        assert_eq!(sql.purge, "DELETE FROM \"t_joins\" WHERE expires_at <= $1");
    }
}
