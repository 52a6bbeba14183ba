//! Practices, their policy and settings, and API keys.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use jiff::tz::TimeZone;
use rappel_domain::plan::PlanContext;
use rappel_domain::policy::{self, Policy};
use rappel_domain::settings::Settings;
use rappel_store::{PracticeRow, Tx};
use serde_json::{Map, Value};

use crate::secret::{random_hex, token_hash};
use crate::{Engine, EngineError, Result};

/// A practice with its checked policy, resolved settings and time zone.
#[derive(Clone)]
pub struct PracticeCtx {
    pub row: PracticeRow,
    pub policy: Arc<Policy>,
    pub settings: Settings,
    pub tz: TimeZone,
}

impl PracticeCtx {
    pub fn plan_ctx(&self) -> PlanContext<'_> {
        PlanContext {
            policy: &self.policy,
            settings: &self.settings,
            tz: &self.tz,
        }
    }

    pub fn build(row: PracticeRow) -> Result<PracticeCtx> {
        let policy = policy_for(&row.preset, row.policy.as_deref())?;
        let settings = Settings::resolve(&policy, &row.settings)
            .map_err(|e| EngineError::invalid(format!("settings.{}", e.key), e.reason))?;
        let tz = parse_timezone(&row.timezone)?;
        Ok(PracticeCtx {
            row,
            policy,
            settings,
            tz,
        })
    }
}

pub fn parse_timezone(name: &str) -> Result<TimeZone> {
    TimeZone::get(name).map_err(|_| {
        EngineError::invalid(
            "timezone",
            format!("`{name}` is not an IANA time zone (e.g. Europe/Paris)"),
        )
    })
}

/// The shipped presets are parsed once per process.
fn policy_for(preset: &str, custom: Option<&str>) -> Result<Arc<Policy>> {
    static PRESETS: OnceLock<HashMap<&'static str, Arc<Policy>>> = OnceLock::new();
    if let Some(source) = custom {
        return Policy::parse(source)
            .map(Arc::new)
            .map_err(|e| EngineError::invalid("policy", e.to_string()));
    }
    let presets = PRESETS.get_or_init(|| {
        policy::PRESETS
            .iter()
            .map(|(name, _)| {
                (
                    *name,
                    Arc::new(policy::preset(name).expect("shipped preset")),
                )
            })
            .collect()
    });
    presets.get(preset).cloned().ok_or_else(|| {
        EngineError::invalid(
            "preset",
            format!("unknown preset `{preset}` (doctolib, rosa, maddie, lifen)"),
        )
    })
}

/// A freshly created API key: shown once, stored only as a hash.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ApiKey {
    pub id: String,
    pub api_key: String,
}

/// `rpl_<practice>_<key id>_<secret>` → (practice, key id, secret).
pub fn api_key_parts(key: &str) -> Option<(&str, &str, &str)> {
    let rest = key.strip_prefix("rpl_")?;
    let mut parts = rest.splitn(3, '_');
    let practice = parts.next()?;
    let key_id = parts.next()?;
    let secret = parts.next()?;
    (!practice.is_empty() && !key_id.is_empty() && secret.len() >= 32)
        .then_some((practice, key_id, secret))
}

impl Engine {
    /// Creates a practice and its first API key.
    pub async fn create_practice(
        &self,
        name: &str,
        preset: &str,
        timezone: &str,
        settings: Map<String, Value>,
    ) -> Result<ApiKey> {
        self.create_practice_with_id(&random_hex(8), name, preset, None, timezone, settings)
            .await
    }

    /// Creates a practice that runs its own policy file (checked first; see `rappel policy
    /// check`) instead of a shipped preset.
    pub async fn create_practice_with_policy(
        &self,
        name: &str,
        policy_source: String,
        timezone: &str,
    ) -> Result<ApiKey> {
        self.create_practice_with_id(
            &random_hex(8),
            name,
            "custom",
            Some(policy_source),
            timezone,
            Map::new(),
        )
        .await
    }

    pub async fn create_practice_with_id(
        &self,
        id: &str,
        name: &str,
        preset: &str,
        policy_source: Option<String>,
        timezone: &str,
        settings: Map<String, Value>,
    ) -> Result<ApiKey> {
        if name.trim().is_empty() {
            return Err(EngineError::invalid("name", "a practice needs a name"));
        }
        let row = PracticeRow {
            id: id.to_string(),
            name: name.trim().to_string(),
            preset: preset.to_string(),
            policy: policy_source,
            timezone: timezone.to_string(),
            settings,
            created_at: self.now(),
        };
        // Validates preset, settings and time zone before anything is written.
        PracticeCtx::build(row.clone())?;
        let mut tx = self.store().begin().await?;
        tx.insert_practice(&row).await?;
        let key_id = random_hex(4);
        let secret = random_hex(16);
        tx.insert_api_key(id, &key_id, &token_hash(&secret), self.now())
            .await?;
        tx.commit().await?;
        Ok(ApiKey {
            id: id.to_string(),
            api_key: format!("rpl_{id}_{key_id}_{secret}"),
        })
    }

    /// The practice an API key belongs to, if the key is valid.
    pub async fn authenticate(&self, api_key: &str) -> Result<Option<String>> {
        let Some((practice, key_id, secret)) = api_key_parts(api_key) else {
            return Ok(None);
        };
        let mut tx = self.store().begin_read().await?;
        let ok = tx
            .api_key_matches(practice, key_id, &token_hash(secret))
            .await?;
        tx.commit().await?;
        Ok(ok.then(|| practice.to_string()))
    }

    pub async fn practice(&self, practice_id: &str) -> Result<PracticeCtx> {
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        tx.commit().await?;
        Ok(ctx)
    }
}

pub(crate) async fn load_practice(tx: &mut Tx, practice_id: &str) -> Result<PracticeCtx> {
    let row = tx
        .practice(practice_id)
        .await?
        .ok_or_else(|| EngineError::not_found("practice", practice_id))?;
    PracticeCtx::build(row)
}
