//! The practice's web interface, in French: server-rendered HTML (maud escapes every value it
//! prints), progressively enhanced by a vendored htmx, no script from anywhere else.
//!
//! Security, in one place:
//! - Sessions are server-side ([`rappel_engine::Engine::sign_in`]): the cookie carries a random
//!   token (`HttpOnly`, `SameSite=Lax`, `Secure` when the public URL is https), the database
//!   only its hash.
//! - Every request that changes something must carry the session's CSRF token: the `_csrf`
//!   field of a form, or the `X-CSRF-Token` header htmx adds (see [`csrf_guard`]). Multipart
//!   forms carry it as a field too, checked by their handler. A cross-origin `Origin` is refused,
//!   on the sign-in form too (with the `Referer` when there is no `Origin`), so another site
//!   cannot sign a browser into an account of its choosing.
//! - Sign-in attempts are counted before the password is checked, answered alike for unknown
//!   and real addresses, limited per client address and in all, and their Argon2 checks run a
//!   few at a time (`auth::submit`).
//! - A password reset or a deleted user ends that user's sessions.
//! - Roles: a `secretariat` user reads everything and handles the boxes; only an `admin`
//!   changes settings, templates, tasks and users ([`Ui::admin`]).
//! - A Content-Security-Policy allows only this origin's scripts and styles, so even a value
//!   that escaped escaping could not run.
//!
//! Like the JSON API, pages go through the engine and never write SQL.

mod auth;
mod dashboard;
mod format;
mod inbox;
mod messages;
mod nul;
mod patients;
mod received;
mod settings;
mod tasks;
mod templates;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use maud::{DOCTYPE, Markup, html};
use rappel_engine::secret::constant_time_eq;
use rappel_engine::{EngineError, PracticeCtx, Role, UiSession};

use crate::AppState;

/// The session cookie's name.
const COOKIE: &str = "rappel_session";

pub(crate) fn router(state: AppState) -> Router<AppState> {
    pages()
        .router
        .layer(middleware::from_fn_with_state(
            state.clone(),
            nul::refuse_nul,
        ))
        .layer(middleware::from_fn_with_state(state, csrf_guard))
        .layer(middleware::map_response(security_headers))
}

/// The interface's routes, each recorded as it is registered: the API's route test checks that
/// every route the server serves is documented or one of these pages.
pub(crate) fn pages() -> Pages {
    Pages::default()
        .route("/", get(dashboard::page))
        .route("/connexion", get(auth::form).post(auth::submit))
        .route("/deconnexion", post(auth::sign_out))
        .route("/envoyes", get(messages::sent_box))
        .route("/envoyes/{key}", get(messages::detail))
        .route("/rendez-vous", get(messages::find_appointment))
        .route("/rendez-vous/{id}", get(messages::appointment))
        .route("/a-verifier", get(inbox::to_verify))
        .route("/notifications", get(inbox::notifications))
        .route("/boites/{id}/resoudre", post(inbox::resolve))
        .route(
            "/documents/{id}/renvoi-postal",
            get(inbox::confirm_resend_postal).post(inbox::resend_postal),
        )
        .route("/parametres", get(settings::page).post(settings::save))
        .route(
            "/parametres/logo",
            get(settings::logo)
                .post(settings::upload_logo)
                // The image may be up to 2 MB before it is resized; the envelope adds a little.
                .layer(DefaultBodyLimit::max(3 * 1024 * 1024)),
        )
        .route(
            "/parametres/praticiens/{id}",
            post(settings::save_practitioner),
        )
        .route(
            "/utilisateurs",
            get(settings::users).post(settings::create_user),
        )
        .route("/utilisateurs/{id}/supprimer", post(settings::delete_user))
        .route(
            "/utilisateurs/{id}/mot-de-passe",
            post(settings::set_password),
        )
        .route("/modeles", get(templates::list))
        .route(
            "/modeles/{kind}/{channel}",
            get(templates::edit).post(templates::save),
        )
        .route("/modeles/{kind}/{channel}/apercu", post(templates::preview))
        .route(
            "/modeles/{kind}/{channel}/apercu.html",
            get(templates::preview_html),
        )
        .route(
            "/modeles/{kind}/{channel}/reinitialiser",
            post(templates::reset),
        )
        .route("/modeles/{kind}/{channel}/test", post(templates::test_send))
        .route("/patients", get(patients::search))
        .route("/patients/{id}", get(patients::page).post(patients::save))
        .route("/patients/{id}/sms-reactiver", post(received::lift_opt_out))
        .route("/messages-recus", get(received::page))
        .route("/messages-recus/{id}/traiter", post(received::resolve))
        .route("/programmateur", get(tasks::list).post(tasks::create))
        .route("/programmateur/nouvelle", get(tasks::new_form))
        .route("/programmateur/{id}", get(tasks::edit).post(tasks::save))
        .route("/programmateur/{id}/apercu", get(tasks::preview))
        .route("/programmateur/{id}/supprimer", post(tasks::delete))
        .route("/static/htmx.min.js", get(htmx))
        .route("/static/rappel.css", get(css))
        .route("/static/editor.js", get(editor_js))
}

/// A router that records the paths it registers (an axum `Router` cannot list them).
#[derive(Default)]
pub(crate) struct Pages {
    router: Router<AppState>,
    paths: Vec<&'static str>,
}

impl Pages {
    fn route(mut self, path: &'static str, method_router: MethodRouter<AppState>) -> Pages {
        self.router = self.router.route(path, method_router);
        self.paths.push(path);
        self
    }

    pub(crate) fn paths(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.paths.iter().copied()
    }
}

/// A signed-in user on a page: their session and their practice.
pub(crate) struct Ui {
    pub session: UiSession,
    pub practice: PracticeCtx,
}

impl Ui {
    pub fn practice_id(&self) -> &str {
        &self.session.user.practice_id
    }

    pub fn is_admin(&self) -> bool {
        self.session.user.role == Role::Admin
    }

    /// The page that refuses anyone but an admin, when this user is not one.
    pub fn unless_admin(&self) -> Option<Response> {
        (!self.is_admin()).then(|| forbidden(self))
    }

    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="_csrf" value=(self.session.csrf); }
    }

    /// The CSRF check of a multipart form, whose body [`csrf_guard`] cannot read: the refusal
    /// when `token` is not this session's.
    pub fn csrf_mismatch(&self, token: &str) -> Option<Response> {
        (!constant_time_eq(token.as_bytes(), self.session.csrf.as_bytes())).then(csrf_refused)
    }
}

impl FromRequestParts<AppState> for Ui {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Ui, Response> {
        if let Some(ui) = parts.extensions.get::<SessionSeen>() {
            return Ok(Ui {
                session: ui.session.clone(),
                practice: ui.practice.clone(),
            });
        }
        let to_sign_in = || {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let target = if next == "/" {
                "/connexion".to_string()
            } else {
                format!("/connexion?suite={}", encode_query(next))
            };
            Redirect::to(&target).into_response()
        };
        let Some(token) = session_token(&parts.headers) else {
            return Err(to_sign_in());
        };
        let session = match state.engine.ui_session(&token).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(to_sign_in()),
            Err(e) => return Err(engine_error_page(&e)),
        };
        let practice = state
            .engine
            .practice(&session.user.practice_id)
            .await
            .map_err(|e| engine_error_page(&e))?;
        Ok(Ui { session, practice })
    }
}

/// The session [`csrf_guard`] already loaded, handed to the extractor.
#[derive(Clone)]
struct SessionSeen {
    session: UiSession,
    practice: PracticeCtx,
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty())
}

/// Refuses a state-changing request that does not prove it comes from one of this session's
/// pages: wrong `Origin`, or no matching CSRF token (header, or `_csrf` in a urlencoded form).
async fn csrf_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    // The sign-in form has no session yet, hence no token: its handler checks instead that the
    // form comes from this site (`auth::submit`), which stops login CSRF.
    if request.uri().path() == "/connexion" {
        return next.run(request).await;
    }
    if let (Some(origin), Some(host)) = (
        request.headers().get(header::ORIGIN),
        request.headers().get(header::HOST),
    ) {
        let origin = origin.to_str().unwrap_or("");
        let host = host.to_str().unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
        if origin_host != host {
            return csrf_refused();
        }
    }
    let Some(token) = session_token(request.headers()) else {
        return Redirect::to("/connexion").into_response();
    };
    let session = match state.engine.ui_session(&token).await {
        Ok(Some(session)) => session,
        Ok(None) => return Redirect::to("/connexion").into_response(),
        Err(e) => return engine_error_page(&e),
    };
    let practice = match state.engine.practice(&session.user.practice_id).await {
        Ok(p) => p,
        Err(e) => return engine_error_page(&e),
    };
    let expected = session.csrf.clone();
    let header_token = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(SessionSeen { session, practice });
    if let Some(token) = header_token {
        if !constant_time_eq(token.as_bytes(), expected.as_bytes()) {
            return csrf_refused();
        }
        return next.run(Request::from_parts(parts, body)).await;
    }
    // Only the logo form is multipart, and its handler checks the form's `_csrf` field; a
    // multipart body anywhere else is refused here, so no handler can forget the check.
    if content_type.starts_with("multipart/form-data") && parts.uri.path() == "/parametres/logo" {
        return next.run(Request::from_parts(parts, body)).await;
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return csrf_refused();
    }
    let bytes = match axum::body::to_bytes(body, state.config.body_limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return page_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Formulaire trop volumineux",
                "Le formulaire envoyé dépasse la taille acceptée.",
            );
        }
    };
    let token = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v.into_owned());
    match token {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        _ => csrf_refused(),
    }
}

fn csrf_refused() -> Response {
    page_error(
        StatusCode::FORBIDDEN,
        "Formulaire expiré",
        "Ce formulaire ne vient pas d'une page ouverte de votre session (elle a peut-être \
         expiré). Rechargez la page et recommencez.",
    )
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // The one page that sets its own policy is the template editor's email preview: framed by
    // this origin only, sandboxed, inline styles as in an email and nothing else.
    let framable = headers.contains_key(header::CONTENT_SECURITY_POLICY);
    if !framable {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                 frame-ancestors 'none'",
            ),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !framable {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn htmx() -> Response {
    static_asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/htmx.min.js"),
    )
}

async fn editor_js() -> Response {
    static_asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/editor.js"),
    )
}

async fn css() -> Response {
    static_asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/rappel.css"),
    )
}

fn static_asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Which entry of the menu a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Dashboard,
    Sent,
    ToVerify,
    Notifications,
    Received,
    Patients,
    Templates,
    Tasks,
    Settings,
}

/// The frame of every signed-in page: header, menu, flash message, content.
pub(crate) fn layout(ui: &Ui, nav: Nav, title: &str, content: Markup) -> Markup {
    let items: &[(Nav, &str, &str, bool)] = &[
        (Nav::Dashboard, "/", "Tableau de bord", false),
        (Nav::Sent, "/envoyes", "Envoyés", false),
        (Nav::ToVerify, "/a-verifier", "À vérifier", false),
        (Nav::Notifications, "/notifications", "Notifications", false),
        (Nav::Received, "/messages-recus", "Messages reçus", false),
        (Nav::Patients, "/patients", "Patients", false),
        (Nav::Templates, "/modeles", "Modèles", true),
        (Nav::Tasks, "/programmateur", "Programmateur", true),
        (Nav::Settings, "/parametres", "Paramètres", true),
    ];
    let body = html! {
        a.skip href="#contenu" { "Aller au contenu" }
        header.top {
            div.brand {
                a href="/" { "Rappel" }
                span.practice { (ui.session.practice_name) }
            }
            // Below 600 px the menu folds behind a « Menu » button: a checkbox and its label,
            // so it works without JavaScript.
            input #menu-ouvert .menu-toggle type="checkbox";
            label.menu-button for="menu-ouvert" { "Menu" }
            nav aria-label="Menu principal" {
                ul {
                    @for (entry, href, label, admin_only) in items {
                        @if !admin_only || ui.is_admin() {
                            li {
                                a href=(href) aria-current=[(*entry == nav).then_some("page")] { (label) }
                            }
                        }
                    }
                }
            }
            div.user {
                span { (ui.session.user.name) " · " (ui.session.user.role.french()) }
                form method="post" action="/deconnexion" {
                    (ui.csrf_field())
                    button.link type="submit" { "Se déconnecter" }
                }
            }
        }
        main #contenu {
            h1 { (title) }
            (content)
        }
    };
    document(title, body, Some(&ui.session.csrf))
}

/// A whole HTML document. With a CSRF token, htmx requests carry it as a header.
pub(crate) fn document(title: &str, body: Markup, csrf: Option<&str>) -> Markup {
    let hx_headers = csrf.map(|token| format!(r#"{{"X-CSRF-Token": "{token}"}}"#));
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // Inline indicator styles would break the Content-Security-Policy.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles": false, "allowEval": false}"#;
                title { (title) " · Rappel" }
                link rel="stylesheet" href="/static/rappel.css";
                script src="/static/htmx.min.js" defer {}
            }
            body hx-headers=[hx_headers] { (body) }
        }
    }
}

pub(crate) fn html_page(markup: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A page that says what went wrong, for someone who is maybe not signed in.
pub(crate) fn page_error(status: StatusCode, title: &str, text: &str) -> Response {
    let body = html! {
        main.narrow #contenu {
            h1 { (title) }
            p { (text) }
            p { a href="/" { "Retour au tableau de bord" } }
        }
    };
    (status, html_page(document(title, body, None))).into_response()
}

fn forbidden(ui: &Ui) -> Response {
    let content = html! {
        p.notice.error role="alert" {
            "Cette page est réservée aux administrateurs du cabinet. Votre compte ("
            (ui.session.user.role.french()) ") peut consulter les messages, les patients et les "
            "boîtes, mais pas modifier les paramètres, les modèles ni le programmateur."
        }
        p { a href="/" { "Retour au tableau de bord" } }
    };
    (
        StatusCode::FORBIDDEN,
        html_page(layout(ui, Nav::Dashboard, "Accès réservé", content)),
    )
        .into_response()
}

/// An engine error as a page: not found is 404, a refused value 422, the rest 500 (logged).
pub(crate) fn engine_error_page(error: &EngineError) -> Response {
    match error {
        EngineError::NotFound { .. } => page_error(
            StatusCode::NOT_FOUND,
            "Introuvable",
            "Cet élément n'existe pas, ou plus, dans votre cabinet.",
        ),
        EngineError::Invalid { field, reason } => page_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Valeur refusée",
            &format!("{field} : {reason}"),
        ),
        EngineError::Store(e) => {
            tracing::error!(error = %e, "web interface: store error");
            page_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Erreur interne",
                "Rappel n'a pas pu lire ou écrire ses données. Réessayez dans un instant ; \
                 si cela persiste, prévenez votre administrateur.",
            )
        }
    }
}

/// A short message shown once at the top of the next page (`?ok=CODE` after a redirect). Only
/// known codes show anything: a crafted link cannot put words of its own on a page.
pub(crate) fn flash(code: Option<&str>) -> Markup {
    let text = code.and_then(|code| {
        Some(match code {
            "enregistre" => "Modifications enregistrées.",
            "resolu" => "Entrée marquée comme traitée.",
            "renvoi" => "Le document sera renvoyé par courrier.",
            "renvoi-deja" => "Ce courrier est déjà parti ou en cours d'envoi : aucun second courrier n'a été posté.",
            "logo" => "Logo enregistré.",
            "modele" => "Modèle enregistré.",
            "reinitialise" => "Modèle par défaut rétabli.",
            "test" => "Message de test envoyé.",
            "tache" => "Tâche enregistrée.",
            "tache-supprimee" => "Tâche supprimée.",
            "utilisateur" => "Utilisateur créé.",
            "utilisateur-supprime" => "Utilisateur supprimé.",
            "mot-de-passe" => "Mot de passe défini.",
            "patient" => "Fiche patient enregistrée.",
            "message-traite" => "Message marqué comme traité.",
            "sms-reactives" => "Les SMS sont réactivés pour ce patient.",
            _ => return None,
        })
    });
    html! {
        @if let Some(text) = text {
            p.notice.ok role="status" { (text) }
        }
    }
}

/// The `?ok=CODE` a page reads after a redirect (see [`flash`]).
#[derive(serde::Deserialize, Default)]
pub(crate) struct Flash {
    pub ok: Option<String>,
}

/// Percent-encodes a value for a query string.
pub(crate) fn encode_query(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A redirect after a successful form, carrying a [`flash`] code.
pub(crate) fn see_other_with(path: &str, code: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}ok={code}")).into_response()
}
