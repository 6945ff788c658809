//! [`EnrollmentRegistry`] for [`PostgresJoinRegistry`]: a second table beside the claims',
//! `<table>_enrollments`, each rule one statement.

use chrono::{DateTime, Utc};
use ec2_iid::{Enrollment, EnrollmentRegistry, MAX_LIST_LIMIT};
use tokio_postgres::Row;

use crate::error::{Operation, PostgresRegistryError};
use crate::registry::PostgresJoinRegistry;

/// The columns every statement that returns records selects, in [`enrollment_of`]'s order.
const COLUMNS: &str = "host_id, account, region, instance_id, matched_rule, pending_time, \
     first_joined, last_renewed, serial, not_after, evicted_at";

/// The enrollment statements for the claims table `table` (already checked).
#[derive(Debug)]
pub(crate) struct EnrollmentSql {
    pub(crate) create_table: String,
    enroll: String,
    renew: String,
    get: String,
    list: String,
    evict: String,
    purge: String,
    count_enrolled: String,
}

impl EnrollmentSql {
    /// The statements of `<table>_enrollments`. `host_id` sorts bytewise (`COLLATE "C"`), so
    /// that pages follow the primary key's index whatever the database's collation.
    pub(crate) fn new(table: &str) -> Self {
        let t = format!("\"{table}_enrollments\"");
        Self {
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 host_id text COLLATE \"C\" PRIMARY KEY, \
                 account text NOT NULL, \
                 region text NOT NULL, \
                 instance_id text NOT NULL, \
                 matched_rule bigint NOT NULL, \
                 pending_time timestamptz NOT NULL, \
                 first_joined timestamptz NOT NULL, \
                 last_renewed timestamptz, \
                 serial text NOT NULL, \
                 not_after timestamptz NOT NULL, \
                 evicted_at timestamptz)"
            ),
            // Enrollment::may_replace in the WHERE, Enrollment::merged_over in the SET.
            enroll: format!(
                "INSERT INTO {t} AS e ({COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, NULL) \
                 ON CONFLICT (host_id) DO UPDATE SET \
                 account = EXCLUDED.account, region = EXCLUDED.region, \
                 instance_id = EXCLUDED.instance_id, matched_rule = EXCLUDED.matched_rule, \
                 pending_time = EXCLUDED.pending_time, serial = EXCLUDED.serial, \
                 not_after = EXCLUDED.not_after, \
                 first_joined = CASE WHEN e.evicted_at IS NULL THEN e.first_joined \
                 ELSE EXCLUDED.first_joined END, \
                 last_renewed = CASE WHEN e.evicted_at IS NULL THEN e.last_renewed \
                 ELSE NULL END, \
                 evicted_at = NULL \
                 WHERE e.evicted_at IS NULL OR e.pending_time < EXCLUDED.pending_time \
                 RETURNING host_id"
            ),
            renew: format!(
                "UPDATE {t} SET serial = $2, not_after = $3, last_renewed = $4 \
                 WHERE host_id = $1 AND evicted_at IS NULL RETURNING {COLUMNS}"
            ),
            get: format!("SELECT {COLUMNS} FROM {t} WHERE host_id = $1"),
            list: format!(
                "SELECT {COLUMNS} FROM {t} WHERE $1::text IS NULL OR host_id > $1 \
                 ORDER BY host_id LIMIT $2"
            ),
            evict: format!(
                "UPDATE {t} SET evicted_at = COALESCE(evicted_at, $2) WHERE host_id = $1 \
                 RETURNING host_id"
            ),
            // GREATEST skips NULLs: a record never renewed counts from its first join.
            purge: format!("DELETE FROM {t} WHERE GREATEST(first_joined, last_renewed) < $1"),
            count_enrolled: format!("SELECT count(*) FROM {t} WHERE evicted_at IS NULL"),
        }
    }
}

impl PostgresJoinRegistry {
    /// Runs the enrollment statement `sql(..)` with `params`, for `op`; its rows.
    async fn enrollment_rows(
        &self,
        op: Operation,
        sql: fn(&EnrollmentSql) -> &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, PostgresRegistryError> {
        let db = |e| PostgresRegistryError::database(op, e);
        let client = self.connection(op).await?;
        let statement = client
            .prepare_cached(sql(self.enrollment_sql()))
            .await
            .map_err(db)?;
        client.query(&statement, params).await.map_err(db)
    }
}

/// The [`EnrollmentRegistry`] in the table `<table>_enrollments` (beside the claims table
/// `<table>`; [`migrate`](PostgresJoinRegistry::migrate) creates both), one row per host. Each
/// method is one statement: `enroll` an `INSERT ... ON CONFLICT (host_id) DO UPDATE ... WHERE`
/// that replaces an evicted row only for a newer launch, `renew` and `evict` an `UPDATE ...
/// WHERE`, `purge` a `DELETE ... WHERE`, `count_enrolled` a `SELECT count(*) ... WHERE evicted_at
/// IS NULL` (a scan of the table). The primary key's row lock serializes concurrent
/// calls on one host, whichever connection they come from. Each call is bounded like a claim
/// ([`with_timeout`](PostgresJoinRegistry::with_timeout)).
///
/// # Errors
///
/// Every method fails as [`claim`](ec2_iid::JoinRegistry::claim) does
/// ([`PostgresRegistryError::Pool`], [`PostgresRegistryError::Database`]; SQLSTATE `42P01`
/// until `migrate` has run), and with [`PostgresRegistryError::InvalidRecord`] for a row that
/// does not hold an enrollment.
impl EnrollmentRegistry for PostgresJoinRegistry {
    type Error = PostgresRegistryError;

    async fn enroll(&self, enrollment: &Enrollment) -> Result<bool, PostgresRegistryError> {
        let rule = i64::try_from(enrollment.matched_rule).unwrap_or(i64::MAX);
        let rows = self
            .enrollment_rows(
                Operation::Enroll,
                |sql| &sql.enroll,
                &[
                    &enrollment.host_id,
                    &enrollment.account,
                    &enrollment.region,
                    &enrollment.instance_id,
                    &rule,
                    &enrollment.pending_time,
                    &enrollment.first_joined,
                    &enrollment.serial,
                    &enrollment.not_after,
                ],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn renew(
        &self,
        host_id: &str,
        serial: &str,
        not_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Enrollment>, PostgresRegistryError> {
        let op = Operation::Renew;
        let rows = self
            .enrollment_rows(op, |sql| &sql.renew, &[&host_id, &serial, &not_after, &now])
            .await?;
        rows.first().map(|row| enrollment_of(op, row)).transpose()
    }

    async fn get(&self, host_id: &str) -> Result<Option<Enrollment>, PostgresRegistryError> {
        let op = Operation::GetEnrollment;
        let rows = self
            .enrollment_rows(op, |sql| &sql.get, &[&host_id])
            .await?;
        rows.first().map(|row| enrollment_of(op, row)).transpose()
    }

    async fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Enrollment>, PostgresRegistryError> {
        let op = Operation::ListEnrollments;
        let limit = i64::try_from(limit.min(MAX_LIST_LIMIT)).unwrap_or(0);
        let rows = self
            .enrollment_rows(op, |sql| &sql.list, &[&after, &limit])
            .await?;
        rows.iter().map(|row| enrollment_of(op, row)).collect()
    }

    async fn evict(
        &self,
        host_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, PostgresRegistryError> {
        let rows = self
            .enrollment_rows(Operation::Evict, |sql| &sql.evict, &[&host_id, &now])
            .await?;
        Ok(!rows.is_empty())
    }

    async fn purge(&self, older_than: DateTime<Utc>) -> Result<u64, PostgresRegistryError> {
        let op = Operation::PurgeEnrollments;
        let db = |e| PostgresRegistryError::database(op, e);
        let client = self.connection(op).await?;
        let statement = client
            .prepare_cached(&self.enrollment_sql().purge)
            .await
            .map_err(db)?;
        client.execute(&statement, &[&older_than]).await.map_err(db)
    }

    async fn count_enrolled(&self) -> Result<u64, PostgresRegistryError> {
        let op = Operation::CountEnrolled;
        let rows = self
            .enrollment_rows(op, |sql| &sql.count_enrolled, &[])
            .await?;
        let count: i64 = match rows.first() {
            Some(row) => row
                .try_get(0)
                .map_err(|e| PostgresRegistryError::database(op, e))?,
            None => 0,
        };
        // count(*) is never negative.
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// The record a row of [`COLUMNS`] holds.
fn enrollment_of(op: Operation, row: &Row) -> Result<Enrollment, PostgresRegistryError> {
    let db = |e| PostgresRegistryError::database(op, e);
    let host_id: String = row.try_get(0).map_err(db)?;
    let rule: i64 = row.try_get(4).map_err(db)?;
    let Ok(matched_rule) = usize::try_from(rule) else {
        return Err(PostgresRegistryError::invalid_record(
            op,
            &host_id,
            "matched_rule out of range",
        ));
    };
    let mut enrollment = Enrollment::joined(
        host_id,
        row.try_get::<_, String>(1).map_err(db)?,
        row.try_get::<_, String>(2).map_err(db)?,
        row.try_get::<_, String>(3).map_err(db)?,
        matched_rule,
        row.try_get(5).map_err(db)?,
        row.try_get::<_, String>(8).map_err(db)?,
        row.try_get(9).map_err(db)?,
        row.try_get(6).map_err(db)?,
    );
    enrollment.last_renewed = row.try_get(7).map_err(db)?;
    enrollment.evicted_at = row.try_get(10).map_err(db)?;
    Ok(enrollment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_the_table() {
        let sql = EnrollmentSql::new("t_joins");
        assert!(
            sql.create_table
                .starts_with("CREATE TABLE IF NOT EXISTS \"t_joins_enrollments\" (")
        );
        assert!(
            sql.enroll
                .starts_with("INSERT INTO \"t_joins_enrollments\" AS e ")
        );
        assert!(
            sql.enroll
                .contains("WHERE e.evicted_at IS NULL OR e.pending_time < EXCLUDED.pending_time")
        );
        assert_eq!(
            sql.purge,
            "DELETE FROM \"t_joins_enrollments\" WHERE GREATEST(first_joined, last_renewed) < $1"
        );
        assert_eq!(
            sql.count_enrolled,
            "SELECT count(*) FROM \"t_joins_enrollments\" WHERE evicted_at IS NULL"
        );
    }
}
