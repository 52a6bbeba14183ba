//! Signing in and out.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use rappel_engine::SignIn;
use serde::Deserialize;

use url::Url;

use super::{COOKIE, document, engine_error_page, html_page, page_error, session_token};
use crate::AppState;
use crate::rate_limit::ClientAddress;

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

/// Signs in. Before any password is checked: the form must come from this site (login CSRF),
/// the client address and the whole server must be within their sign-in rates, and a slot for
/// the Argon2 verification must free up within a short wait. The engine then counts the attempt
/// before checking the password and answers the same for unknown and real addresses.
pub(crate) async fn submit(
    State(state): State<AppState>,
    client: ClientAddress,
    headers: HeaderMap,
    Form(credentials): Form<Credentials>,
) -> Response {
    let public_url = state.config.public_url.as_deref();
    if !from_this_site(&headers, public_url) {
        tracing::info!("sign-in refused: the form was sent from another site");
        return page_error(
            StatusCode::FORBIDDEN,
            "Connexion refusée",
            "Ce formulaire de connexion a été envoyé depuis un autre site que Rappel. \
             Ouvrez la page de connexion de Rappel et connectez-vous depuis celle-ci.",
        );
    }
    let limited = state
        .sign_in_per_address
        .check(&client.key())
        .and_then(|()| state.sign_in_global.check(""));
    if let Err(retry_after) = limited {
        let text = format!(
            "Trop de tentatives de connexion en peu de temps. Réessayez dans {retry_after} s."
        );
        return refused_page(
            StatusCode::TOO_MANY_REQUESTS,
            &text,
            &credentials,
            Some(retry_after),
        );
    }
    let wait = state.config.sign_in.hash_wait;
    let Ok(Ok(slot)) = tokio::time::timeout(wait, state.hashes.clone().acquire_owned()).await
    else {
        return refused_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Trop de connexions en cours. Réessayez dans un instant.",
            &credentials,
            Some(2),
        );
    };
    let outcome = state
        .engine
        .sign_in(&credentials.email, &credentials.password)
        .await;
    drop(slot);
    match outcome {
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
            let target = safe_next(credentials.suite.as_deref(), public_url);
            let mut response = Redirect::to(&target).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Ok(SignIn::Refused) => refused_page(
            StatusCode::UNAUTHORIZED,
            "Adresse email ou mot de passe incorrect.",
            &credentials,
            None,
        ),
        Ok(SignIn::Locked { until }) => {
            let minutes = (until.duration_since(state.engine.now()).as_secs() + 59) / 60;
            let text = format!(
                "Trop de tentatives : ce compte est bloqué pendant encore {minutes} min. \
                 Un administrateur du cabinet peut aussi définir un nouveau mot de passe."
            );
            refused_page(StatusCode::TOO_MANY_REQUESTS, &text, &credentials, None)
        }
        Err(e) => engine_error_page(&e),
    }
}

/// The sign-in form again, with why the attempt was refused.
fn refused_page(
    status: StatusCode,
    text: &str,
    credentials: &Credentials,
    retry_after: Option<u64>,
) -> Response {
    let page = sign_in_page(Some(text), &credentials.email, credentials.suite.as_deref());
    let mut response = (status, html_page(page)).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Whether a sign-in form was sent from this site: its `Origin` (or, when a browser sends none,
/// its `Referer`) is the public URL's origin or the origin the request was addressed to
/// (`Host`). Without either header it is not a browser's cross-site form (browsers send
/// `Origin` with every cross-site POST), so it is let through. An opaque `null` origin is not
/// this site.
///
/// Without this check a page elsewhere could sign the victim's browser into the attacker's
/// account (login CSRF), so that what the victim then types lands in the attacker's practice.
fn from_this_site(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let claimed = match headers.get(header::ORIGIN).or(headers.get(header::REFERER)) {
        Some(value) => value,
        None => return true,
    };
    let Some(url) = claimed.to_str().ok().and_then(|c| Url::parse(c).ok()) else {
        return false;
    };
    let origin = url.origin();
    if !origin.is_tuple() {
        return false;
    }
    if public_url
        .and_then(|p| Url::parse(p).ok())
        .is_some_and(|public| public.origin() == origin)
    {
        return true;
    }
    headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| Url::parse(&format!("{}://{host}/", url.scheme())).ok())
        .is_some_and(|addressed| addressed.host().is_some() && addressed.origin() == origin)
}

/// Where to send the browser after signing in: `next` when it is a path of this site, else `/`.
///
/// Decided the way a browser reads the `Location`: `next` is resolved as a URL against the
/// public origin and must stay on it. Browsers drop tabs and line breaks from URLs and read `\`
/// as `/`, so `/\t/evil.example` or `/\evil.example` would become `//evil.example`, another
/// host: control characters and backslashes are refused outright, and only the resolved path
/// and query are sent back, percent-encoded, never the text as given.
fn safe_next(next: Option<&str>, public_url: Option<&str>) -> String {
    const FALLBACK_BASE: &str = "http://rappel.invalid/";
    let Some(next) = next else {
        return "/".to_string();
    };
    if !next.starts_with('/')
        || next.starts_with("//")
        || next.chars().any(|c| c.is_control() || c == '\\')
    {
        return "/".to_string();
    }
    let base = public_url
        .and_then(|p| Url::parse(p).ok())
        .filter(|p| p.origin().is_tuple())
        .unwrap_or_else(|| Url::parse(FALLBACK_BASE).expect("a valid URL"));
    match base.join(next) {
        Ok(url) if url.origin() == base.origin() => match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        },
        _ => "/".to_string(),
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
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::{from_this_site, safe_next};

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        let next = |path: &str| safe_next(Some(path), None);
        assert_eq!(next("/envoyes?page=2"), "/envoyes?page=2");
        assert_eq!(next("/patients?q=du%20pont"), "/patients?q=du%20pont");
        assert_eq!(next("/rendez-vous/é"), "/rendez-vous/%C3%A9");
        for hostile in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example/",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "\t//evil.example",
            " //evil.example",
            "/\u{0}x",
            "/\u{85}x",
            "javascript:alert(1)",
            "evil.example",
            "",
        ] {
            assert_eq!(next(hostile), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(None, None), "/");
        // With a public URL (and a path of its own), the same paths and only them.
        assert_eq!(
            safe_next(Some("/envoyes"), Some("https://rappel.example/app/")),
            "/envoyes"
        );
        assert_eq!(
            safe_next(Some("//evil.example"), Some("https://rappel.example")),
            "/"
        );
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_sign_in_form_must_come_from_this_site() {
        let host = (header::HOST, "rappel.example:8080");
        let ok = |pairs: &[(header::HeaderName, &str)]| from_this_site(&headers(pairs), None);
        assert!(ok(&[
            host.clone(),
            (header::ORIGIN, "http://rappel.example:8080")
        ]));
        assert!(!ok(&[
            host.clone(),
            (header::ORIGIN, "https://evil.example")
        ]));
        assert!(!ok(&[host.clone(), (header::ORIGIN, "null")]));
        assert!(!ok(&[
            host.clone(),
            (header::ORIGIN, "http://rappel.example:8081")
        ]));
        // No Origin: the Referer decides; neither: not a cross-site browser form.
        assert!(ok(&[
            host.clone(),
            (header::REFERER, "http://rappel.example:8080/connexion")
        ]));
        assert!(!ok(&[
            host.clone(),
            (header::REFERER, "https://evil.example/login.html")
        ]));
        assert!(ok(std::slice::from_ref(&host)));
        // Behind a proxy that rewrites Host, the public URL is this site.
        let proxied = headers(&[
            (header::HOST, "127.0.0.1:8080"),
            (header::ORIGIN, "https://rappel.example"),
        ]);
        assert!(from_this_site(&proxied, Some("https://rappel.example/")));
        assert!(!from_this_site(&proxied, Some("https://other.example/")));
    }
}
