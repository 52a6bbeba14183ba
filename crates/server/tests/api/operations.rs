//! Operations: health, shutdown, metrics and the API description.

use super::*;

#[tokio::test]
async fn health_answers_ok_without_an_api_key() {
    let app = spawn_app().await;
    let r = app.send("GET", "/health", None, &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok"}));
    app.stop().await;
}

#[tokio::test]
async fn serve_returns_once_shutdown_completes() {
    let app = spawn_app().await;
    let addr = app.addr;
    app.stop().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_show_the_queue() {
    let app = spawn_app().await;
    app.seed_directory().await;
    app.post_events(&booking("a1", "2026-03-12T09:30:00+01:00"))
        .await;
    app.get("/v1/patients/nobody").await;
    app.send("GET", "/v1/settings", None, &[], None).await;
    let r = app.send("GET", "/metrics", None, &[], None).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = r.text();
    for line in [
        "rappel_http_requests_total{method=\"PUT\",route=\"/v1/patients/{id}\",status=\"201\"} 1",
        "rappel_http_requests_total{method=\"GET\",route=\"/v1/patients/{id}\",status=\"404\"} 1",
        "rappel_http_requests_total{method=\"GET\",route=\"/v1/settings\",status=\"401\"} 1",
        "rappel_http_requests_total{method=\"POST\",route=\"/v1/events\",status=\"202\"} 1",
        "rappel_events_ingested_total{outcome=\"applied\"} 1",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    assert!(
        text.contains("rappel_notifications{status=\"pending\",channel=\"email\"}"),
        "{text}"
    );
    let depth: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("rappel_queue_depth "))
        .expect("queue depth")
        .parse()
        .unwrap();
    assert!(depth > 0, "a booking plans messages: {text}");
    assert!(text.contains("rappel_dispatch_lag_seconds 0.000"), "{text}");
    // Ids never become label values: the route template does.
    assert!(!text.contains("nobody"));
    assert!(
        text.contains("rappel_handoff_lateness_seconds_count 0"),
        "nothing handed off yet: {text}"
    );

    // The confirmation goes: one hand-off, on time.
    app.engine.dispatch_all_due().await.unwrap();
    let text = app.send("GET", "/metrics", None, &[], None).await.text();
    for line in [
        "rappel_handoffs_total{channel=\"email\",outcome=\"sent\"} 1",
        "rappel_handoff_lateness_seconds_bucket{le=\"0.1\"} 1",
        "rappel_handoff_lateness_seconds_bucket{le=\"+Inf\"} 1",
        "rappel_handoff_lateness_seconds_count 1",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    app.stop().await;
}

/// Every route the server registers is served, and is in the document (and on the page) unless
/// it is one of the deliberate exclusions. The list comes from the registrations themselves
/// (`rappel_server::registered_routes`): the API's routes are registered with their
/// description (`OpenApiRouter`), the web interface's pages through a recording router.
#[tokio::test]
async fn the_openapi_document_and_the_docs_page_describe_every_route() {
    let app = spawn_app().await;
    let r = app.send("GET", "/v1/openapi.json", None, &[], None).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let page = app.send("GET", "/v1/docs", None, &[], None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(
        page.header("content-security-policy"),
        Some("default-src 'none'; style-src 'unsafe-inline'")
    );
    let html = page.text();
    assert!(html.starts_with("<!DOCTYPE html>"));

    let routes = rappel_server::registered_routes();
    assert!(routes.len() > 90, "only {} routes registered", routes.len());
    for route in &routes {
        let (method, path) = (route.method.as_str(), route.path.as_str());
        // Served: a request reaches the route (no fallback 404, no 405), with the practice's
        // key for the API. Placeholders become `x`, an id that exists nowhere.
        let concrete: String = path
            .split('/')
            .map(|part| if part.starts_with('{') { "x" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        let verb = if method == "*" { "GET" } else { method };
        let reply = app
            .send(&verb.to_uppercase(), &concrete, Some(&app.key), &[], None)
            .await;
        let fallback = reply.status == 404
            && (reply.text().contains("no route for")
                || reply.text().contains("aucune page de Rappel"));
        assert!(!fallback, "{method} {path} is registered but not served");
        if method != "*" {
            assert_ne!(
                reply.status, 405,
                "{method} {path} is registered but not served"
            );
        }
        if route.documented {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is not documented"
            );
            assert!(html.contains(path), "{path} missing from the page");
        } else {
            // The one deliberate exclusion: the web interface's pages (HTML for a signed-in
            // person, not an API). None of them may take an API path.
            let api = path.starts_with("/v1") || path.starts_with("/d/") || path.starts_with("/r/");
            assert!(
                !api && path != "/health" && path != "/metrics",
                "{path} is registered as a page of the web interface"
            );
            assert!(doc["paths"].get(path).is_none(), "{path}");
        }
    }
    // And the document describes nothing that is not served.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(
                routes
                    .iter()
                    .any(|r| r.documented && &r.path == path && &r.method == method),
                "{method} {path} is documented but not registered"
            );
        }
    }
    assert!(html.contains("id=\"problem-invalid-request\""));
    assert!(!html.contains("<script"), "the page runs no script");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page loads nothing from elsewhere"
    );
    app.stop().await;
}
