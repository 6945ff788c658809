//! The registry's error: no connection, a failed statement, or a bad setting.

use core::error::Error as StdError;
use core::fmt;

/// A boxed error from tokio-postgres or deadpool, kept as the `source` of a
/// [`PostgresRegistryError`].
type Source = Box<dyn StdError + Send + Sync + 'static>;

/// What the registry was doing when the database failed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum Operation {
    /// [`claim`](ec2_iid::JoinRegistry::claim): the upsert that records a join.
    Claim,
    /// [`count_enrolled`](ec2_iid::EnrollmentRegistry::count_enrolled): counting the
    /// enrollment records not evicted.
    CountEnrolled,
    /// [`enroll`](ec2_iid::EnrollmentRegistry::enroll): the upsert of an enrollment record.
    Enroll,
    /// [`evict`](ec2_iid::EnrollmentRegistry::evict): marking a host evicted.
    Evict,
    /// [`get`](ec2_iid::EnrollmentRegistry::get): reading a host's enrollment record.
    GetEnrollment,
    /// [`list`](ec2_iid::EnrollmentRegistry::list): reading a page of enrollment records.
    ListEnrollments,
    /// [`migrate`](crate::PostgresJoinRegistry::migrate): creating the table and its index.
    Migrate,
    /// [`purge_expired`](crate::PostgresJoinRegistry::purge_expired): deleting expired records.
    PurgeExpired,
    /// [`purge`](ec2_iid::EnrollmentRegistry::purge): deleting enrollment records not seen
    /// since a cutoff.
    PurgeEnrollments,
    /// [`record`](ec2_iid::JoinRegistry::record): reading a host's record.
    Record,
    /// [`renew`](ec2_iid::EnrollmentRegistry::renew): recording a renewal.
    Renew,
}

impl Operation {
    /// A short name for messages, e.g. `claim`.
    ///
    /// ```
    /// assert_eq!(ec2_iid_postgres::Operation::PurgeExpired.as_str(), "purge expired");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::CountEnrolled => "count enrolled",
            Self::Enroll => "enroll",
            Self::Evict => "evict",
            Self::GetEnrollment => "get enrollment",
            Self::ListEnrollments => "list enrollments",
            Self::Migrate => "migrate",
            Self::PurgeEnrollments => "purge enrollments",
            Self::PurgeExpired => "purge expired",
            Self::Record => "record",
            Self::Renew => "renew",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A [`PostgresJoinRegistry`](crate::PostgresJoinRegistry) could not be set up or could not get
/// an answer from PostgreSQL.
///
/// A refused claim is not an error (`Ok(false)`). Errors from tokio-postgres and deadpool stay
/// reachable as the [`source`](core::error::Error::source).
///
/// ```
/// # fn print(err: &ec2_iid_postgres::PostgresRegistryError) {
/// if err.is_transient() {
///     eprintln!("join registry unavailable, try again later: {err}");
/// } else {
///     eprintln!("join registry failed: {err}");
/// }
/// # }
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PostgresRegistryError {
    /// A statement (or the login) reached the server and failed there, or the connection broke
    /// while it ran.
    #[non_exhaustive]
    #[error("{operation}: database error{}", code_suffix(code.as_deref()))]
    Database {
        /// The registry call that failed.
        operation: Operation,
        /// The server's SQLSTATE code (e.g. `42P01`: the table does not exist; run
        /// [`migrate`](crate::PostgresJoinRegistry::migrate)), when it sent one.
        code: Option<String>,
        /// tokio-postgres's error.
        #[source]
        source: Source,
    },
    /// The connection settings could not be parsed (an unknown key, an `sslmode` other than
    /// `disable`, `require` or `verify-full`), the `sslrootcert` file could not be read, or the
    /// pool could not be built. The message never shows the settings (they may hold a
    /// password).
    #[non_exhaustive]
    #[error("invalid connection settings")]
    InvalidConfig {
        /// tokio-postgres's, rustls's or deadpool's error, or what this crate refuses.
        #[source]
        source: Source,
    },
    /// A row of the enrollment records' table does not hold a record (e.g. a negative
    /// `matched_rule` written by hand). Not transient: the row must be fixed or deleted.
    #[non_exhaustive]
    #[error("{operation}: invalid enrollment record of host {host_id:?}: {reason}")]
    InvalidRecord {
        /// The registry call that read it.
        operation: Operation,
        /// The row's host id (at most 64 characters of it).
        host_id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The table name is not a plain lowercase SQL identifier of at most
    /// [`MAX_TABLE_NAME_LEN`](crate::MAX_TABLE_NAME_LEN) bytes.
    #[non_exhaustive]
    #[error("invalid table name {name:?}: {reason}")]
    InvalidTableName {
        /// The name as given (at most 64 characters of it).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No connection could be had from the pool: the server is unreachable, refused the login,
    /// or the pool timed out or was closed.
    #[non_exhaustive]
    #[error("{operation}: no database connection")]
    Pool {
        /// The registry call that needed the connection.
        operation: Operation,
        /// deadpool's error (with tokio-postgres's inside, when there is one).
        #[source]
        source: Source,
    },
    /// The TLS handshake with the database failed: its certificate was refused
    /// (`sslmode=verify-full`: not signed by a CA of `sslrootcert`, expired, or not issued for
    /// the host name) or the handshake itself failed. A configuration problem, not transient.
    #[non_exhaustive]
    #[error("{operation}: TLS handshake with the database failed")]
    Tls {
        /// The registry call that needed the connection.
        operation: Operation,
        /// deadpool's error, with tokio-postgres's and rustls's inside.
        #[source]
        source: Source,
    },
}

impl PostgresRegistryError {
    /// Whether the same call may succeed later without a configuration change: no connection
    /// (including a pool timeout), a broken connection, or a server-side condition such as a
    /// serialization failure, resource exhaustion, a shutdown or a cancelled statement
    /// (SQLSTATE classes 08, 40, 53, 57, and 55P03 `lock_not_available`).
    ///
    /// A join server can answer these with "try again" instead of "denied".
    ///
    /// The registry's [timeout](crate::PostgresJoinRegistry::with_timeout) ends a statement
    /// on the server with 57014 `query_canceled` (`statement_timeout`) or 55P03
    /// (`lock_timeout`): the statement then did not commit, so a claim that failed so was not
    /// recorded and its retry can win. The same holds for a [`Pool`](Self::Pool) error (no
    /// statement was sent).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Pool { .. } => true,
            Self::Database { code: None, .. } => true,
            Self::Database {
                code: Some(code), ..
            } => {
                code == "55P03"
                    || ["08", "40", "53", "57"]
                        .iter()
                        .any(|class| code.starts_with(class))
            }
            Self::InvalidConfig { .. }
            | Self::InvalidRecord { .. }
            | Self::InvalidTableName { .. }
            | Self::Tls { .. } => false,
        }
    }

    /// The registry call that failed, if the error is about one.
    #[must_use]
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Self::Database { operation, .. }
            | Self::InvalidRecord { operation, .. }
            | Self::Pool { operation, .. }
            | Self::Tls { operation, .. } => Some(*operation),
            Self::InvalidConfig { .. } | Self::InvalidTableName { .. } => None,
        }
    }

    /// A failed statement.
    pub(crate) fn database(operation: Operation, err: tokio_postgres::Error) -> Self {
        let code = err.code().map(|c| c.code().to_owned());
        Self::Database {
            operation,
            code,
            source: Box::new(err),
        }
    }

    /// No connection from the pool: [`Tls`](Self::Tls) if rustls refused the handshake,
    /// [`Database`](Self::Database) with the server's SQLSTATE if the server refused the
    /// login (class 28: a wrong password or no `pg_hba.conf` entry; 3D000: no such database),
    /// which [`is_transient`](Self::is_transient) then judges by its code: retrying does not
    /// fix a configuration.
    pub(crate) fn pool(operation: Operation, err: deadpool_postgres::PoolError) -> Self {
        let refused_login = match &err {
            deadpool_postgres::PoolError::Backend(e) => e.code().map(|c| c.code().to_owned()),
            _ => None,
        };
        if let Some(code) = refused_login {
            Self::Database {
                operation,
                code: Some(code),
                source: Box::new(err),
            }
        } else if is_tls_refusal(&err) {
            Self::Tls {
                operation,
                source: Box::new(err),
            }
        } else {
            Self::Pool {
                operation,
                source: Box::new(err),
            }
        }
    }

    /// A row that is not an enrollment record.
    pub(crate) fn invalid_record(
        operation: Operation,
        host_id: &str,
        reason: &'static str,
    ) -> Self {
        Self::InvalidRecord {
            operation,
            host_id: host_id.chars().take(64).collect(),
            reason,
        }
    }

    /// Bad connection settings.
    pub(crate) fn config(err: impl StdError + Send + Sync + 'static) -> Self {
        Self::InvalidConfig {
            source: Box::new(err),
        }
    }
}

/// Whether a rustls error is among `err`'s sources. tokio-postgres wraps it in an
/// `io::Error`, whose `source` skips it (it is reached with `get_ref`).
fn is_tls_refusal(err: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        if err.is::<rustls::Error>() || inner.is_some_and(|e| e.is::<rustls::Error>()) {
            return true;
        }
        next = err.source();
    }
    false
}

/// `" (SQLSTATE code)"` or nothing, for Display.
fn code_suffix(code: Option<&str>) -> String {
    code.map(|c| format!(" (SQLSTATE {c})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(code: Option<&str>) -> PostgresRegistryError {
        PostgresRegistryError::Database {
            operation: Operation::Claim,
            code: code.map(str::to_owned),
            source: Box::new(std::io::Error::other("x")),
        }
    }

    #[test]
    fn cancelled_statements_are_transient() {
        // statement_timeout, lock_timeout, a connection failure, a serialization failure,
        // no connection slot, a shutdown; and a lost connection (no code).
        for code in ["57014", "55P03", "08006", "40001", "53300", "57P01"] {
            assert!(database(Some(code)).is_transient(), "{code}");
        }
        assert!(database(None).is_transient());
        // No table, a constraint, another class-55 state (object in use): not retried.
        for code in ["42P01", "23505", "55006"] {
            assert!(!database(Some(code)).is_transient(), "{code}");
        }
    }

    #[test]
    fn a_rustls_error_inside_an_io_error_is_found() {
        let rustls = std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        assert!(is_tls_refusal(&rustls));
        assert!(!is_tls_refusal(&std::io::Error::other("reset")));
    }
}
