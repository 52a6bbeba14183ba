//! The people who use the web interface: accounts per practice, Argon2id passwords, sign-in
//! with a lock after repeated failures, and server-side sessions whose cookie token is stored
//! only as its SHA-256.

use jiff::{SignedDuration, Timestamp};
use rappel_store::{SessionRow, UserRow};

use crate::practice::load_practice;
use crate::secret::{random_hex, token_hash};
use crate::{Engine, EngineError, Result};

/// Wrong passwords in a row before the account is locked.
pub const MAX_FAILED_SIGN_INS: i64 = 5;
/// How long a locked account stays locked.
pub const SIGN_IN_LOCK: SignedDuration = SignedDuration::from_mins(15);
/// How long a session lasts from sign-in: a working day, so a shared reception computer does not
/// stay signed in overnight.
pub const SESSION_LIFETIME: SignedDuration = SignedDuration::from_hours(12);
/// Shortest accepted password.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// What a user may do. Only admins change settings, templates, tasks and users.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Secretariat,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Secretariat => "secretariat",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "secretariat" => Some(Role::Secretariat),
            _ => None,
        }
    }

    /// The role's name in the interface.
    pub fn french(self) -> &'static str {
        match self {
            Role::Admin => "Administrateur",
            Role::Secretariat => "Secrétariat",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub practice_id: String,
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
}

/// A signed-in browser, as each request of the web interface sees it.
#[derive(Clone, Debug)]
pub struct UiSession {
    pub user: User,
    /// The practice's display name.
    pub practice_name: String,
    /// Every state-changing form of this session must carry it.
    pub csrf: String,
    pub expires_at: Timestamp,
}

/// The outcome of a sign-in attempt.
#[derive(Debug)]
pub enum SignIn {
    /// `token` goes into the session cookie; it is stored nowhere else.
    Accepted { token: String, session: UiSession },
    /// Unknown address or wrong password: the two are not told apart.
    Refused,
    /// Too many wrong passwords; try again after this instant.
    Locked { until: Timestamp },
}

impl Engine {
    /// Creates a user of the practice. The email is their login, unique across practices.
    pub async fn create_user(
        &self,
        practice_id: &str,
        email: &str,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<User> {
        let login = rappel_domain::contact::EmailAddress::parse(email.trim())
            .map_err(|e| EngineError::invalid("email", e.to_string()))?
            .as_str()
            .to_lowercase();
        let name = name.trim();
        if name.is_empty() {
            return Err(EngineError::invalid("name", "the name is empty"));
        }
        check_password(password)?;
        let password_hash = hash_password(password.to_string()).await?;
        let now = self.now();
        let row = UserRow {
            practice_id: practice_id.to_string(),
            id: random_hex(8),
            login,
            name: name.to_string(),
            role: role.as_str().to_string(),
            password_hash,
            failed_attempts: 0,
            locked_until: None,
            created_at: now,
        };
        let mut tx = self.store().begin().await?;
        load_practice(&mut tx, practice_id).await?;
        if !tx.insert_user(&row).await? {
            return Err(EngineError::invalid(
                "email",
                "a user already signs in with this address",
            ));
        }
        tx.commit().await?;
        user(&row)
    }

    pub async fn users(&self, practice_id: &str) -> Result<Vec<User>> {
        let mut tx = self.store().begin_read().await?;
        let rows = tx.users(practice_id).await?;
        tx.commit().await?;
        rows.iter().map(user).collect()
    }

    /// Removes a user and ends their sessions. Returns false when unknown.
    pub async fn delete_user(&self, practice_id: &str, id: &str) -> Result<bool> {
        let mut tx = self.store().begin().await?;
        let deleted = tx.delete_user(practice_id, id).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// Sets a new password, which also lifts a lock and ends the user's open sessions.
    pub async fn set_password(&self, practice_id: &str, id: &str, password: &str) -> Result<()> {
        check_password(password)?;
        let hash = hash_password(password.to_string()).await?;
        let mut tx = self.store().begin().await?;
        if !tx.set_user_password(practice_id, id, &hash).await? {
            return Err(EngineError::not_found("user", id));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Checks the password and opens a session. After [`MAX_FAILED_SIGN_INS`] wrong passwords
    /// the account is locked for `SIGN_IN_LOCK` (15 minutes), even for the right password.
    ///
    /// The attempt is counted before the password is checked (see
    /// [`rappel_store::Tx::count_sign_in_attempt`]), so guesses sent in parallel cannot outrun
    /// the lock. Every answer costs one Argon2 verification, and an address without an account
    /// is counted and locked in memory exactly like a real one: neither the answer nor its
    /// timing tells which addresses have an account.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<SignIn> {
        let login = email.trim().to_lowercase();
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let counted = tx
            .count_sign_in_attempt(&login, now, MAX_FAILED_SIGN_INS, now + SIGN_IN_LOCK)
            .await?;
        let found = match counted {
            Some(_) => None,
            None => tx.user_by_login(&login).await?,
        };
        tx.commit().await?;
        let Some(row) = counted else {
            // No attempt was counted: the account is locked, or there is none. Both spend the
            // time of a real check.
            let _ = verify_password(password.to_string(), dummy_hash().to_string()).await;
            let locked = match found {
                Some(row) => row.locked_until.filter(|until| *until > now),
                None => self.inner.unknown_logins.fail(&login, now),
            };
            return Ok(match locked {
                Some(until) => SignIn::Locked { until },
                None => SignIn::Refused,
            });
        };
        let ok = verify_password(password.to_string(), row.password_hash.clone()).await?;
        if !ok {
            let failed = row.failed_attempts;
            tracing::info!(practice = %row.practice_id, user = %row.id, failed, "sign-in refused");
            return Ok(match row.locked_until {
                Some(until) => SignIn::Locked { until },
                None => SignIn::Refused,
            });
        }
        let mut tx = self.store().begin().await?;
        tx.reset_user_attempts(&row.practice_id, &row.id).await?;
        let token = random_hex(32);
        let session = SessionRow {
            token_hash: token_hash(&token),
            practice_id: row.practice_id.clone(),
            user_id: row.id.clone(),
            csrf: random_hex(16),
            created_at: now,
            expires_at: now + SESSION_LIFETIME,
        };
        tx.insert_session(&session).await?;
        let practice = load_practice(&mut tx, &row.practice_id).await?;
        tx.commit().await?;
        Ok(SignIn::Accepted {
            token,
            session: UiSession {
                user: user(&row)?,
                practice_name: practice.row.name.clone(),
                csrf: session.csrf,
                expires_at: session.expires_at,
            },
        })
    }

    /// The session a cookie's token opens, if it exists and has not expired.
    pub async fn ui_session(&self, token: &str) -> Result<Option<UiSession>> {
        let now = self.now();
        let mut tx = self.store().begin_read().await?;
        let Some(session) = tx.session(&token_hash(token), now).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        let found = tx.user(&session.practice_id, &session.user_id).await?;
        let practice = tx.practice(&session.practice_id).await?;
        tx.commit().await?;
        let (Some(row), Some(practice)) = (found, practice) else {
            return Ok(None);
        };
        Ok(Some(UiSession {
            user: user(&row)?,
            practice_name: practice.name,
            csrf: session.csrf,
            expires_at: session.expires_at,
        }))
    }

    pub async fn sign_out(&self, token: &str) -> Result<()> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        tx.delete_session(&token_hash(token), now).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The failed sign-ins of addresses that have no account, counted and locked like an account's
/// (in memory: writing them to the database would let anyone fill it). Bounded: past
/// [`UnknownLogins::CAPACITY`] addresses, the ones no longer locked are forgotten first.
#[derive(Default)]
pub(crate) struct UnknownLogins {
    // A std Mutex: a few map operations, never held across an await.
    failures: std::sync::Mutex<std::collections::HashMap<String, (i64, Option<Timestamp>)>>,
}

impl UnknownLogins {
    const CAPACITY: usize = 10_000;

    /// Records a failed attempt for `login` at `now`; returns the lock's end when the address
    /// is locked, as [`Tx::count_sign_in_attempt`](rappel_store::Tx::count_sign_in_attempt)
    /// would for an account.
    fn fail(&self, login: &str, now: Timestamp) -> Option<Timestamp> {
        // Keyed by the address's hash: an address is whatever a client typed, up to the body
        // limit, and ten thousand of those must not take gigabytes.
        let login = token_hash(login);
        let login = login.as_str();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= Self::CAPACITY && !failures.contains_key(login) {
            failures.retain(|_, (_, until)| until.is_some_and(|u| u > now));
            if failures.len() >= Self::CAPACITY {
                failures.clear();
            }
        }
        let entry = failures.entry(login.to_string()).or_insert((0, None));
        match entry.1 {
            Some(until) if until > now => return Some(until),
            Some(_) => *entry = (0, None),
            None => {}
        }
        entry.0 += 1;
        if entry.0 >= MAX_FAILED_SIGN_INS {
            entry.1 = Some(now + SIGN_IN_LOCK);
        }
        entry.1
    }
}

fn user(row: &UserRow) -> Result<User> {
    Ok(User {
        practice_id: row.practice_id.clone(),
        id: row.id.clone(),
        email: row.login.clone(),
        name: row.name.clone(),
        role: Role::parse(&row.role).ok_or_else(|| {
            EngineError::Store(rappel_store::StoreError::Corrupt {
                table: "users",
                reason: format!("column `role`: unknown value `{}`", row.role),
            })
        })?,
        created_at: row.created_at,
    })
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(EngineError::invalid(
            "password",
            format!("the password must have at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Argon2id with the crate's default cost (19 MiB, 2 passes), off the async threads: one hash
/// takes tens of milliseconds.
async fn hash_password(password: String) -> Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).expect("the OS provides randomness");
        let salt = SaltString::encode_b64(&salt)
            .map_err(|e| EngineError::invalid("password", e.to_string()))?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| EngineError::invalid("password", e.to_string()))
    })
    .await
    .map_err(|e| EngineError::invalid("password", e.to_string()))?
}

async fn verify_password(password: String, hash: String) -> Result<bool> {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .map_err(|e| EngineError::invalid("password", e.to_string()))
}

/// A valid Argon2id hash of a random password nobody knows, computed once.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"rappel-dummy-salt").expect("a valid salt");
        argon2::Argon2::default()
            .hash_password(random_hex(16).as_bytes(), &salt)
            .expect("hashing a random password")
            .to_string()
    })
}
