//! The web interface's people and sessions (`users`, `user_sessions`), and the counts its
//! dashboard shows. Same SQL on both backends.

use jiff::Timestamp;
use sqlx::any::AnyRow;

use super::Tx;
use super::codec::{Cols, ms, opt_ms};
use super::routes::Route;
use crate::{Result, StoreError};

/// Someone who signs in to a practice's web interface.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRow {
    pub practice_id: String,
    pub id: String,
    /// The lower-cased email address they sign in with, unique across practices.
    pub login: String,
    pub name: String,
    /// `admin` or `secretariat`.
    pub role: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub failed_attempts: i64,
    pub locked_until: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for UserRow {
    // Neither the login (an email address) nor the hash belongs in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("practice_id", &self.practice_id)
            .field("id", &self.id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A signed-in browser. The cookie holds the token; the row holds its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub token_hash: String,
    pub practice_id: String,
    pub user_id: String,
    pub csrf: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

const USER_COLUMNS: &str = "practice_id, id, login, name, role, password_hash, failed_attempts, \
                            locked_until, created_at";

fn user_from_row(row: &AnyRow) -> Result<UserRow> {
    let c = Cols::new(row, "users");
    Ok(UserRow {
        practice_id: c.text("practice_id")?,
        id: c.text("id")?,
        login: c.text("login")?,
        name: c.text("name")?,
        role: c.text("role")?,
        password_hash: c.text("password_hash")?,
        failed_attempts: c.int("failed_attempts")?,
        locked_until: c.opt_ts("locked_until")?,
        created_at: c.ts("created_at")?,
    })
}

impl Tx {
    /// Returns false when the login is already taken (in any practice).
    /// The login's route (`lookup_routes`) holds its uniqueness across practices.
    pub async fn insert_user(&mut self, user: &UserRow) -> Result<bool> {
        if !self
            .insert_route(Route::Login, &user.login, &user.practice_id, None)
            .await?
        {
            return Ok(false);
        }
        let done = sqlx::query(
            "INSERT INTO users (practice_id, id, login, name, role, password_hash, \
             failed_attempts, locked_until, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&user.practice_id)
        .bind(&user.id)
        .bind(&user.login)
        .bind(&user.name)
        .bind(&user.role)
        .bind(&user.password_hash)
        .bind(user.failed_attempts)
        .bind(opt_ms(user.locked_until))
        .bind(ms(user.created_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The user who signs in with `login` (already lower-cased), whatever their practice.
    pub async fn user_by_login(&mut self, login: &str) -> Result<Option<UserRow>> {
        let Some(practice_id) = self.route(Route::Login, login).await? else {
            return Ok(None);
        };
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE practice_id = $1 AND login = $2");
        sqlx::query(&sql)
            .bind(practice_id)
            .bind(login)
            .fetch_optional(&mut *self.inner)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    pub async fn user(&mut self, practice_id: &str, id: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE practice_id = $1 AND id = $2");
        sqlx::query(&sql)
            .bind(practice_id)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    pub async fn users(&mut self, practice_id: &str) -> Result<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE practice_id = $1 ORDER BY login");
        let rows = sqlx::query(&sql)
            .bind(practice_id)
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Counts a sign-in attempt against the account of `login` *before* its password is checked,
    /// in one statement, and returns the account as it now is; `None` when there is no such
    /// account or it is locked at `now` (nothing is written then).
    ///
    /// Counting first is what makes the lock hold against parallel guesses: each attempt takes
    /// its own number from the row, so the `max`-th one sets the lock (until `lock_until`) before
    /// any hash is compared, and later ones find the account locked. A lock that has run out
    /// starts a fresh count. A success resets the count ([`Tx::reset_user_attempts`]).
    pub async fn count_sign_in_attempt(
        &mut self,
        login: &str,
        now: Timestamp,
        max: i64,
        lock_until: Timestamp,
    ) -> Result<Option<UserRow>> {
        // An unknown login writes nothing.
        let Some(practice_id) = self.route(Route::Login, login).await? else {
            return Ok(None);
        };
        // Both backends evaluate every SET expression on the row as it was, so the count is
        // written out twice rather than read back from the first assignment.
        let sql = format!(
            "UPDATE users SET \
               failed_attempts = CASE WHEN locked_until IS NULL THEN failed_attempts + 1 ELSE 1 END, \
               locked_until = CASE \
                 WHEN (CASE WHEN locked_until IS NULL THEN failed_attempts + 1 ELSE 1 END) >= $3 \
                 THEN $4 ELSE NULL END \
             WHERE login = $1 AND practice_id = $5 \
               AND (locked_until IS NULL OR locked_until <= $2) \
             RETURNING {USER_COLUMNS}"
        );
        sqlx::query(&sql)
            .bind(login)
            .bind(ms(now))
            .bind(max)
            .bind(ms(lock_until))
            .bind(practice_id)
            .fetch_optional(&mut *self.inner)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    /// A sign-in succeeded: the failure count and any lock are forgotten.
    pub async fn reset_user_attempts(&mut self, practice_id: &str, id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE users SET failed_attempts = 0, locked_until = NULL \
             WHERE practice_id = $1 AND id = $2",
        )
        .bind(practice_id)
        .bind(id)
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// Records a sign-in attempt's outcome: the failure count and the lock.
    pub async fn set_user_attempts(
        &mut self,
        practice_id: &str,
        id: &str,
        failed_attempts: i64,
        locked_until: Option<Timestamp>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE users SET failed_attempts = $3, locked_until = $4 \
             WHERE practice_id = $1 AND id = $2",
        )
        .bind(practice_id)
        .bind(id)
        .bind(failed_attempts)
        .bind(opt_ms(locked_until))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// Sets a new password, lifts any lock, and ends every session of the user: whoever signed
    /// in with the old password (perhaps the reason for the reset) is signed out.
    pub async fn set_user_password(
        &mut self,
        practice_id: &str,
        id: &str,
        password_hash: &str,
    ) -> Result<bool> {
        self.end_user_sessions(practice_id, id).await?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = $3, failed_attempts = 0, locked_until = NULL \
             WHERE practice_id = $1 AND id = $2",
        )
        .bind(practice_id)
        .bind(id)
        .bind(password_hash)
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes the user and, with them, their sessions.
    pub async fn delete_user(&mut self, practice_id: &str, id: &str) -> Result<bool> {
        if let Some(user) = self.user(practice_id, id).await? {
            self.delete_routes(Route::Login, practice_id, &[user.login])
                .await?;
        }
        self.end_user_sessions(practice_id, id).await?;
        let done = sqlx::query("DELETE FROM users WHERE practice_id = $1 AND id = $2")
            .bind(practice_id)
            .bind(id)
            .execute(&mut *self.inner)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes every session of the user, and their routes.
    async fn end_user_sessions(&mut self, practice_id: &str, id: &str) -> Result<()> {
        let tokens: Vec<String> = sqlx::query(
            "SELECT token_hash FROM user_sessions WHERE practice_id = $1 AND user_id = $2",
        )
        .bind(practice_id)
        .bind(id)
        .fetch_all(&mut *self.inner)
        .await?
        .iter()
        .map(|r| Cols::new(r, "user_sessions").text("token_hash"))
        .collect::<Result<_>>()?;
        self.delete_routes(Route::Session, practice_id, &tokens)
            .await?;
        sqlx::query("DELETE FROM user_sessions WHERE practice_id = $1 AND user_id = $2")
            .bind(practice_id)
            .bind(id)
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    pub async fn insert_session(&mut self, session: &SessionRow) -> Result<()> {
        if !self
            .insert_route(
                Route::Session,
                &session.token_hash,
                &session.practice_id,
                Some(session.expires_at),
            )
            .await?
        {
            return Err(StoreError::Corrupt {
                table: "lookup_routes",
                reason: "a session's token hash is already in use".into(),
            });
        }
        sqlx::query(
            "INSERT INTO user_sessions (token_hash, practice_id, user_id, csrf, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&session.token_hash)
        .bind(&session.practice_id)
        .bind(&session.user_id)
        .bind(&session.csrf)
        .bind(ms(session.created_at))
        .bind(ms(session.expires_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// The session with this token hash, if it has not expired at `now`.
    pub async fn session(
        &mut self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<SessionRow>> {
        let Some(practice_id) = self.route(Route::Session, token_hash).await? else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT token_hash, practice_id, user_id, csrf, created_at, expires_at \
             FROM user_sessions WHERE practice_id = $3 AND token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(ms(now))
        .bind(practice_id)
        .fetch_optional(&mut *self.inner)
        .await?;
        row.as_ref()
            .map(|row| {
                let c = Cols::new(row, "user_sessions");
                Ok(SessionRow {
                    token_hash: c.text("token_hash")?,
                    practice_id: c.text("practice_id")?,
                    user_id: c.text("user_id")?,
                    csrf: c.text("csrf")?,
                    created_at: c.ts("created_at")?,
                    expires_at: c.ts("expires_at")?,
                })
            })
            .transpose()
    }

    /// Ends one session, and (housekeeping on the way) every session of its practice that
    /// expired before `now`, and the routes of every expired session.
    pub async fn delete_session(&mut self, token_hash: &str, now: Timestamp) -> Result<()> {
        if let Some(practice_id) = self.route(Route::Session, token_hash).await? {
            sqlx::query(
                "DELETE FROM user_sessions \
                 WHERE practice_id = $3 AND (token_hash = $1 OR expires_at <= $2)",
            )
            .bind(token_hash)
            .bind(ms(now))
            .bind(&practice_id)
            .execute(&mut *self.inner)
            .await?;
            self.delete_routes(Route::Session, &practice_id, &[token_hash.to_string()])
                .await?;
        }
        self.delete_expired_routes(now).await
    }

    /// `(channel, status, count)` of the practice's notifications decided in `[since, until)`
    /// (pending ones by their due time): the dashboard's delivery rates.
    pub async fn notification_stats(
        &mut self,
        practice_id: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(concat!(
            "SELECT channel, ",
            read_status!(),
            " AS status, COUNT(*) AS n FROM notifications \
             WHERE practice_id = $1 AND COALESCE(decided_at, due_at) >= $2 \
               AND COALESCE(decided_at, due_at) < $3 \
             GROUP BY 1, 2 ORDER BY 1, 2"
        ))
        .bind(practice_id)
        .bind(ms(since))
        .bind(ms(until))
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|row| {
                let c = Cols::new(row, "notifications");
                Ok((c.text("channel")?, c.text("status")?, c.int("n")?))
            })
            .collect()
    }
}
