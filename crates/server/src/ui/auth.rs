//! Signing in and out.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use rappel_engine::SignIn;
use serde::Deserialize;

use super::{COOKIE, document, engine_error_page, html_page, session_token};
use crate::AppState;

#[derive(Deserialize, Default)]
pub(crate) struct Next {
    suite: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct Credentials {
    email: String,
    password: String,
    suite: Option<String>,
}

pub(crate) async fn form(Query(next): Query<Next>) -> Response {
    html_page(sign_in_page(None, "", next.suite.as_deref()))
}

fn sign_in_page(error: Option<&str>, email: &str, next: Option<&str>) -> Markup {
    let body = html! {
        main.narrow #contenu {
            h1 { "Connexion à Rappel" }
            p { "Les messages envoyés à vos patients, ce qui est prévu, et pourquoi." }
            @if let Some(error) = error {
                p.notice.error role="alert" #erreur { (error) }
            }
            form.stack method="post" action="/connexion" {
                label for="email" { "Adresse email" }
                input #email type="email" name="email" value=(email) autocomplete="username"
                    required autofocus aria-describedby=[error.map(|_| "erreur")];
                label for="password" { "Mot de passe" }
                input #password type="password" name="password"
                    autocomplete="current-password" required;
                @if let Some(next) = next {
                    input type="hidden" name="suite" value=(next);
                }
                button type="submit" { "Se connecter" }
            }
        }
    };
    document("Connexion", body, None)
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    Form(credentials): Form<Credentials>,
) -> Response {
    match state
        .engine
        .sign_in(&credentials.email, &credentials.password)
        .await
    {
        Ok(SignIn::Accepted { token, session }) => {
            let max_age = session
                .expires_at
                .duration_since(state.engine.now())
                .as_secs()
                .max(0);
            let secure = if state.config.secure_cookies {
                "; Secure"
            } else {
                ""
            };
            let cookie = format!(
                "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
            );
            let target = safe_next(credentials.suite.as_deref());
            let mut response = Redirect::to(target).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Ok(SignIn::Refused) => (
            StatusCode::UNAUTHORIZED,
            html_page(sign_in_page(
                Some("Adresse email ou mot de passe incorrect."),
                &credentials.email,
                credentials.suite.as_deref(),
            )),
        )
            .into_response(),
        Ok(SignIn::Locked { until }) => {
            let minutes = (until.duration_since(state.engine.now()).as_secs() + 59) / 60;
            let text = format!(
                "Trop de tentatives : ce compte est bloqué pendant encore {minutes} min. \
                 Un administrateur du cabinet peut aussi définir un nouveau mot de passe."
            );
            (
                StatusCode::TOO_MANY_REQUESTS,
                html_page(sign_in_page(
                    Some(&text),
                    &credentials.email,
                    credentials.suite.as_deref(),
                )),
            )
                .into_response()
        }
        Err(e) => engine_error_page(&e),
    }
}

/// Only a path of this site: `//evil.example` or `https://…` would send the user elsewhere
/// after signing in (an open redirect).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path
        }
        _ => "/",
    }
}

pub(crate) async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers)
        && let Err(e) = state.engine.sign_out(&token).await
    {
        return engine_error_page(&e);
    }
    let mut response = Redirect::to("/connexion").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("rappel_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/envoyes?page=2")), "/envoyes?page=2");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
