//! The web interface over real HTTP: sessions, CSRF, roles, tenant isolation and escaping. The
//! browser tests (e2e/) show the same pages work in Chromium; these pin the security rules
//! exactly, on a simulated clock.

#[path = "../common/mod.rs"]
mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::{Reply, TestApp, parse_reply, spawn_app, spawn_app_with};
use jiff::SignedDuration;
use rappel_engine::Role;
use rappel_server::{ServerConfig, SignInLimits};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod pages;
mod sessions;
mod sign_in_limits;

const PASSWORD: &str = "un-mot-de-passe-solide";

impl TestApp {
    async fn page(&self, cookie: Option<&str>, path: &str) -> Reply {
        let mut headers = vec![];
        let cookie_header = cookie.map(|c| format!("rappel_session={c}"));
        if let Some(c) = &cookie_header {
            headers.push(("Cookie", c.as_str()));
        }
        self.send("GET", path, None, &headers, None).await
    }

    async fn form(&self, cookie: Option<&str>, path: &str, body: &str) -> Reply {
        self.form_with(cookie, path, body, &[]).await
    }

    async fn form_with(
        &self,
        cookie: Option<&str>,
        path: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let cookie_header = cookie.map(|c| format!("rappel_session={c}"));
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(c) = &cookie_header {
            headers.push(("Cookie", c.as_str()));
        }
        headers.extend_from_slice(extra);
        self.send("POST", path, None, &headers, Some(body.as_bytes()))
            .await
    }

    /// Signs in; returns the session token and the page's CSRF token.
    async fn sign_in(&self, email: &str) -> (String, String) {
        let reply = self
            .form(
                None,
                "/connexion",
                &format!("email={email}&password={PASSWORD}"),
            )
            .await;
        assert_eq!(reply.status, 303, "{}", reply.text());
        let cookie = reply.header("set-cookie").expect("a session cookie");
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        let token = cookie
            .trim_start_matches("rappel_session=")
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let home = self.page(Some(&token), "/").await;
        assert_eq!(home.status, 200);
        let csrf = csrf_of(&home.text());
        (token, csrf)
    }
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"_csrf\" value=\"")
        .expect("a form with a CSRF token");
    page[at + 20..].split('"').next().unwrap().to_string()
}

async fn app_with_users() -> TestApp {
    add_users(spawn_app().await).await
}

/// Sign-in limits that never get in the way: for the tests of what lies behind them.
fn unlimited_sign_ins() -> ServerConfig {
    ServerConfig {
        sign_in: SignInLimits {
            per_address_burst: 10_000,
            global_burst: 10_000,
            hash_wait: Duration::from_secs(300),
            ..SignInLimits::default()
        },
        ..ServerConfig::default()
    }
}

async fn add_users(app: TestApp) -> TestApp {
    app.engine
        .create_user(
            &app.practice,
            "Admin@Cabinet.test",
            "Alice",
            Role::Admin,
            PASSWORD,
        )
        .await
        .unwrap();
    app.engine
        .create_user(
            &app.practice,
            "accueil@cabinet.test",
            "Samia",
            Role::Secretariat,
            PASSWORD,
        )
        .await
        .unwrap();
    app
}
