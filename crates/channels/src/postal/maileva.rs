//! Maileva (La Poste)'s "courrier simple" REST API: a letter posted by the provider.

use std::time::Duration;

use serde::Deserialize;

use super::pdf::{ADDRESS_MAX_LINES, letter_pdf, page_count};
use super::{PostalTariff, letter_of};
use crate::{ChannelError, OutboundMessage, Receipt, SendFuture, Transport};

/// How to reach Maileva's "courrier simple" REST API (v2) and what a letter costs.
#[derive(Clone)]
pub struct MailevaConfig {
    /// `https://api.maileva.com` (or `https://api.sandbox.maileva.net`).
    pub api_url: String,
    /// The OAuth2 token endpoint (client credentials).
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// What a letter costs: the API answers no price (see the module's documentation).
    pub tariff: PostalTariff,
    pub timeout: Duration,
}

impl std::fmt::Debug for MailevaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailevaConfig")
            .field("api_url", &self.api_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Sends letters through Maileva: an OAuth2 token (client credentials), then a sending is
/// created (`POST /mail/v2/sendings`), the letter's PDF added as its document, the recipient's
/// address lines added, and the sending submitted. The sending's id is the provider id.
pub struct PostalApi {
    config: MailevaConfig,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

impl PostalApi {
    pub fn maileva(config: MailevaConfig) -> PostalApi {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .expect("a reqwest client with rustls builds");
        PostalApi { config, http }
    }

    /// The cost of a letter of `pages` pages, in cents.
    pub fn cost_cents(&self, pages: usize) -> u32 {
        self.config.tariff.cost_cents(pages)
    }

    async fn token(&self) -> Result<String, ChannelError> {
        let response = self
            .http
            .post(&self.config.token_url)
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(transport_error)?;
        let response = classify(response).await?;
        let token: Token = response
            .json()
            .await
            .map_err(|e| ChannelError::Permanent(format!("Maileva token answer: {e}")))?;
        Ok(token.access_token)
    }

    async fn post_json(
        &self,
        token: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, ChannelError> {
        let url = format!(
            "{}/mail/v2{path}",
            self.config.api_url.trim_end_matches('/')
        );
        let response = self
            .http
            .post(url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(transport_error)?;
        classify(response).await
    }
}

fn transport_error(e: reqwest::Error) -> ChannelError {
    ChannelError::Transient {
        reason: format!("Maileva unreachable: {e}"),
        retry_after: None,
    }
}

/// 2xx passes; 429 and 5xx are worth retrying; other 4xx are refusals for good.
async fn classify(response: reqwest::Response) -> Result<reqwest::Response, ChannelError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    let reason = format!("Maileva answered {status}: {body}");
    if status.is_server_error() || status.as_u16() == 429 {
        Err(ChannelError::Transient {
            reason,
            retry_after: None,
        })
    } else {
        Err(ChannelError::Permanent(reason))
    }
}

impl Transport for PostalApi {
    fn letter_cost_cents(&self, pages: usize) -> Option<u32> {
        Some(self.config.tariff.cost_cents(pages))
    }

    fn send<'a>(&'a self, message: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let letter = letter_of(message)?;
            let pdf = letter_pdf(letter, letter.date)?;
            let pages = page_count(&pdf)?;
            let token = self.token().await?;
            let sending: Created = self
                .post_json(
                    &token,
                    "/sendings",
                    &serde_json::json!({
                        "name": message.id,
                        "custom_id": message.id,
                        "color_printing": false,
                        "duplex_printing": true,
                        "optional_address_sheet": false,
                        "postage_type": "ECONOMIC",
                    }),
                )
                .await?
                .json()
                .await
                .map_err(|e| ChannelError::Permanent(format!("Maileva sending answer: {e}")))?;
            let base = format!(
                "{}/mail/v2/sendings/{}",
                self.config.api_url.trim_end_matches('/'),
                sending.id
            );
            let form = reqwest::multipart::Form::new()
                .part(
                    "document",
                    reqwest::multipart::Part::bytes(pdf)
                        .file_name("courrier.pdf")
                        .mime_str("application/pdf")
                        .expect("a valid MIME type"),
                )
                .text(
                    "metadata",
                    serde_json::json!({ "priority": 1, "name": "courrier.pdf" }).to_string(),
                );
            let response = self
                .http
                .post(format!("{base}/documents"))
                .bearer_auth(&token)
                .multipart(form)
                .send()
                .await
                .map_err(transport_error)?;
            classify(response).await?;
            let mut recipient = serde_json::Map::new();
            for (i, line) in letter
                .address_block
                .iter()
                .take(ADDRESS_MAX_LINES)
                .enumerate()
            {
                recipient.insert(format!("address_line_{}", i + 1), line.clone().into());
            }
            recipient.insert("country_code".into(), "FR".into());
            recipient.insert("custom_id".into(), message.id.clone().into());
            self.post_json(
                &token,
                &format!("/sendings/{}/recipients", sending.id),
                &serde_json::Value::Object(recipient),
            )
            .await?;
            self.post_json(
                &token,
                &format!("/sendings/{}/submit", sending.id),
                &serde_json::json!({}),
            )
            .await?;
            let cost_cents = self.cost_cents(pages);
            tracing::info!(
                sending = %sending.id,
                pages,
                cost_cents,
                "letter handed to Maileva"
            );
            Ok(Receipt {
                provider_id: Some(format!("maileva:{}", sending.id)),
                cost_cents: Some(cost_cents),
            })
        })
    }
}
