//! A document's link: upload, the patient's page, its lock and what it reveals.

use super::*;

#[tokio::test]
async fn an_uploaded_document_is_stored_encrypted_mailed_as_a_link_and_consulted_with_the_birth_date()
 {
    let app = spawn_app().await;
    let pdf = sample_pdf("Compte rendu");
    let r = app.upload("d1", &pdf).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["document"]["email"], "pending");
    assert_eq!(r.json()["document"]["file"]["size"], pdf.len());

    // One file, and not the PDF in clear.
    let stored = files_in(app.documents_dir());
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].starts_with(b"%PDF-"));
    assert_eq!(
        stored[0].len(),
        pdf.len() + 16,
        "ciphertext and its GCM tag"
    );

    // The same upload again changes nothing; another file under the same id is refused.
    let again = app.upload("d1", &pdf).await;
    assert_eq!(again.status, 200, "{}", again.text());
    let other = app.upload("d1", &sample_pdf("Autre")).await;
    assert_eq!(other.status, 422, "{}", other.text());

    // The email carries a link, never the document.
    let link = app.link_of_latest_email().await;
    let sent = app.recorder.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].message.letter.is_none());
    let token = link.trim_start_matches("/d/");
    assert_eq!(token.len(), 43, "32 random bytes in base64url: {token}");
    // The copy kept for audit does not hold the token.
    let mut tx = app.engine.store().begin().await.unwrap();
    let practice = tx.practices().await.unwrap()[0].id.clone();
    let rows = tx.document_notifications(&practice, "d1").await.unwrap();
    tx.commit().await.unwrap();
    let rendered = rows
        .iter()
        .find(|r| r.channel == Channel::Email)
        .and_then(|r| r.rendered.clone())
        .unwrap();
    assert!(!rendered.to_string().contains(token), "{rendered}");

    // The page asks for the birth date, without JavaScript, and cannot be framed.
    let page = app.send("GET", &link, None, &[], None).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("type=\"date\""));
    assert!(page.text().contains("JJ/MM/AAAA"));
    // Nothing about the document before the birth date is checked: only who sent it.
    assert!(
        page.text()
            .contains("Cabinet Lumière vous a transmis un document.")
    );
    assert!(!page.text().contains("Compte rendu"), "{}", page.text());
    assert!(!page.text().contains("<script"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );

    // Wrong: the form again, in French.
    let wrong = app.answer(&link, "03/02/1980").await;
    assert_eq!(wrong.status, 422);
    assert!(
        wrong.text().contains("ne correspond pas"),
        "{}",
        wrong.text()
    );
    assert!(wrong.text().contains("4 essais"));
    assert!(!wrong.text().contains("Compte rendu"), "{}", wrong.text());

    // Right: the PDF itself, and the consultation is recorded.
    let right = app.answer(&link, "02/03/1980").await;
    assert_eq!(right.status, 200, "{}", right.text());
    assert_eq!(right.header("content-type"), Some("application/pdf"));
    assert!(
        right
            .header("content-disposition")
            .unwrap()
            .starts_with("inline")
    );
    assert_eq!(right.header("cache-control"), Some("no-store"));
    assert_eq!(right.body, pdf);

    let details = app.get("/v1/documents/d1").await.json();
    assert!(details["consulted_at"].is_string(), "{details}");
    // The letter planned for an unread document is no longer wanted.
    let postal: Vec<&Value> = details["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "postal")
        .collect();
    assert_eq!(postal.len(), 1, "{details}");
    assert_eq!(postal[0]["status"], "suppressed");
    assert_eq!(postal[0]["reason"], "superseded");

    // Six days later nothing goes by post.
    app.advance(SignedDuration::from_hours(24 * 7));
    app.engine.dispatch_all_due().await.unwrap();
    assert!(
        app.recorder
            .sent()
            .iter()
            .all(|r| r.message.channel != Channel::Postal)
    );
    app.stop().await;
}

#[tokio::test]
async fn five_wrong_birth_dates_lock_the_link_for_an_hour() {
    let app = spawn_app().await;
    assert_eq!(app.upload("d1", &sample_pdf("A")).await.status, 201);
    let link = app.link_of_latest_email().await;
    for left in (1..5).rev() {
        let r = app.answer(&link, "01/01/1990").await;
        assert_eq!(r.status, 422);
        assert!(r.text().contains(&format!("{left} essai")), "{}", r.text());
    }
    let locked = app.answer(&link, "01/01/1990").await;
    assert_eq!(locked.status, 429);
    assert!(locked.text().contains("bloqué"), "{}", locked.text());
    // Even the right date waits for the end of the lock.
    assert_eq!(app.answer(&link, "02/03/1980").await.status, 429);
    assert_eq!(app.send("GET", &link, None, &[], None).await.status, 429);
    app.advance(SignedDuration::from_mins(61));
    let r = app.answer(&link, "02/03/1980").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.starts_with(b"%PDF-"));
    app.stop().await;
}

#[tokio::test]
async fn expired_unknown_and_malformed_tokens_reveal_nothing() {
    let app = spawn_app().await;
    assert_eq!(app.upload("d1", &sample_pdf("A")).await.status, 201);
    let link = app.link_of_latest_email().await;
    let unknown = app
        .send(
            "GET",
            "/d/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.text().contains("Lien indisponible"));
    assert!(!unknown.text().contains("Compte rendu"));
    assert_eq!(
        app.send("GET", "/d/nope", None, &[], None).await.status,
        404
    );
    assert_eq!(app.answer("/d/nope", "02/03/1980").await.status, 404);

    app.advance(SignedDuration::from_hours(24 * 31));
    let expired = app.send("GET", &link, None, &[], None).await;
    assert_eq!(expired.status, 410);
    assert!(!expired.text().contains("Compte rendu"));
    assert_eq!(app.answer(&link, "02/03/1980").await.status, 410);
    app.stop().await;
}

#[tokio::test]
async fn another_practice_sees_neither_the_document_nor_opens_it_with_its_own_patient() {
    let app = spawn_app().await;
    let other = app
        .engine
        .create_practice("Cabinet B", "lifen", "Europe/Paris", lifen_settings())
        .await
        .unwrap()
        .api_key;
    app.put_patient(&other, "p1", "1975-01-01").await;
    assert_eq!(app.upload("d1", &sample_pdf("A")).await.status, 201);
    let link = app.link_of_latest_email().await;
    // Practice B's key does not see practice A's document.
    let r = app
        .send("GET", "/v1/documents/d1", Some(&other), &[], None)
        .await;
    assert_eq!(r.status, 404);
    // B has a patient p1 too: their birth date does not open A's document.
    assert_eq!(app.answer(&link, "01/01/1975").await.status, 422);
    app.stop().await;
}

#[tokio::test]
async fn uploads_are_checked_for_size_type_and_fields() {
    let app = spawn_app_with(ServerConfig {
        document_limit: 2000,
        ..ServerConfig::default()
    })
    .await;
    let mut big = sample_pdf("A");
    big.splice(10..10, std::iter::repeat_n(b' ', 3000));
    assert_eq!(app.upload("d1", &big).await.status, 413);
    let r = app.upload("d1", b"<html>not a pdf</html>").await;
    assert_eq!(r.status, 415, "{}", r.text());
    let truncated = &sample_pdf("A")[..200];
    assert_eq!(app.upload("d1", truncated).await.status, 415);
    let json = app
        .send(
            "POST",
            "/v1/documents",
            Some(&app.key.clone()),
            &[],
            Some(b"{}"),
        )
        .await;
    assert_eq!(json.status, 415);
    let unknown_patient = app
        .upload_as(&app.key.clone(), "d1", "nobody", &sample_pdf("A"))
        .await;
    assert_eq!(unknown_patient.status, 422, "{}", unknown_patient.text());
    assert!(
        files_in(app.documents_dir()).is_empty(),
        "a refused upload leaves no file"
    );
    app.stop().await;
}

#[tokio::test]
async fn erasing_the_patient_deletes_their_document_files() {
    let app = spawn_app().await;
    assert_eq!(app.upload("d1", &sample_pdf("A")).await.status, 201);
    let link = app.link_of_latest_email().await;
    assert_eq!(files_in(app.documents_dir()).len(), 1);
    let r = app
        .send(
            "DELETE",
            "/v1/patients/p1",
            Some(&app.key.clone()),
            &[],
            None,
        )
        .await;
    assert!(r.status < 300, "{}", r.text());
    assert!(files_in(app.documents_dir()).is_empty());
    assert_eq!(app.send("GET", &link, None, &[], None).await.status, 404);
    app.stop().await;
}
