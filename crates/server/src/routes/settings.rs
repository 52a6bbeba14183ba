//! `GET` and `PATCH /v1/settings`: the practice's options, resolved over their defaults, and
//! what each option is (its type, default, French label, whether it is locked, its choices).

use axum::Json;
use axum::extract::State;
use std::collections::BTreeMap;

use rappel_domain::policy::OptionSpec;
use rappel_domain::settings::{Settings, option_specs};
use rappel_engine::EngineError;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::docs::responses::{
    BadRequest, PayloadTooLarge, TooManyRequests, Unauthorized, Unprocessable, UnsupportedMediaType,
};
use crate::error::ApiError;
use crate::extract::{JsonBody, Tenant};

#[utoipa::path(
    get,
    path = "/v1/settings",
    tag = "Settings",
    operation_id = "getSettings",
    summary = "The practice's options and what each one is",
    responses(
        (status = 200, description = "Preset, time zone, resolved values and option descriptions.", body = SettingsView),
        (status = 401, response = Unauthorized),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn get_settings(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
) -> Result<Json<SettingsView>, ApiError> {
    representation(&state, &practice).await.map(Json)
}

/// The practice's options: the values in force and what each option is.
#[derive(Serialize, ToSchema)]
#[schema(as = Settings)]
pub(crate) struct SettingsView {
    /// doctolib, rosa, maddie, lifen or custom.
    preset: String,
    /// IANA time zone (Europe/Paris).
    timezone: String,
    /// Every option's value in force.
    #[schema(value_type = Object)]
    settings: Value,
    /// Every option, by name.
    options: BTreeMap<String, OptionSpec>,
}

async fn representation(state: &AppState, practice: &str) -> Result<SettingsView, ApiError> {
    let ctx = state.engine.practice(practice).await?;
    Ok(SettingsView {
        options: option_specs(&ctx.policy),
        settings: resolved(&ctx.settings),
        preset: ctx.row.preset,
        timezone: ctx.row.timezone,
    })
}

/// Merges the body's keys into the practice's settings and re-plans; answers the resolved
/// settings (the same document as `GET`). An unknown key or a value of the wrong type is 422 naming the key.
#[utoipa::path(
    patch,
    path = "/v1/settings",
    tag = "Settings",
    operation_id = "patchSettings",
    summary = "Change some options",
    description = "The body's keys replace those options' values; the others keep \
        theirs. Open work is re-planned at once. An unknown key, a value of the \
        wrong type, or switching off a locked behaviour is 422 naming the key; so \
        is a change of `plan` or `sms_quota_per_month` (the operator sets them: \
        `rappel practice set`) and an `sms_sender` that passes for a public \
        service (AMELI, CPAM, impôts…), and a `history_retention_months` outside \
        4 to 120 (finished messages older than that are deleted).",
    request_body(content = Object, description = "Option name → new value (see `options` of GET)."),
    responses(
        (status = 200, description = "The settings after the change (the same document as GET).", body = SettingsView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn patch_settings(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    body: JsonBody,
) -> Result<Json<SettingsView>, ApiError> {
    let Value::Object(patch) = body.value else {
        return Err(ApiError::Invalid {
            field: None,
            reason: "the body must be a JSON object of settings".into(),
        });
    };
    state
        .engine
        .update_settings(&practice, &patch)
        .await
        .map_err(|error| match error {
            // The engine names the field as in a `settings.updated` event; here the body *is*
            // the settings object, so the key alone names it.
            EngineError::Invalid { field, reason } => ApiError::Invalid {
                field: Some(
                    field
                        .strip_prefix("settings.")
                        .unwrap_or(&field)
                        .to_string(),
                ),
                reason,
            },
            other => other.into(),
        })?;
    representation(&state, &practice).await.map(Json)
}

fn resolved(settings: &Settings) -> Value {
    Value::Object(
        settings
            .as_map()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}
