//! The practice's logo over HTTP (`PUT`, `GET`, `DELETE /v1/settings/logo`): the image is the
//! body, recognised by its content; what comes back is the resized PNG.

mod common;
use common::*;

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbaImage::from_pixel(width, height, image::Rgba([30, 60, 90, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width, height, image::Rgb([200, 40, 40]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

impl TestApp {
    async fn put_logo(&self, content_type: &str, body: &[u8]) -> Reply {
        self.send(
            "PUT",
            "/v1/settings/logo",
            Some(&self.key.clone()),
            &[("Content-Type", content_type)],
            Some(body),
        )
        .await
    }
}

#[tokio::test]
async fn a_logo_is_uploaded_resized_served_as_png_and_deleted() {
    let app = spawn_app().await;
    app.get("/v1/settings/logo").await.problem(404);

    let r = app.put_logo("image/jpeg", &jpeg(400, 100)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let info = r.json();
    assert_eq!(
        (info["width"].as_u64(), info["height"].as_u64()),
        (Some(150), Some(38))
    );
    assert!(info["updated_at"].is_string());

    let r = app.get("/v1/settings/logo").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/png"));
    let image = image::load_from_memory_with_format(&r.body, image::ImageFormat::Png).unwrap();
    assert_eq!((image.width(), image.height()), (150, 38));

    // Another practice sees none of it.
    let other = app
        .engine
        .create_practice("Cabinet B", "doctolib", "Europe/Paris", Default::default())
        .await
        .unwrap();
    app.get_as(&other.api_key, "/v1/settings/logo")
        .await
        .problem(404);

    let r = app
        .send("DELETE", "/v1/settings/logo", Some(&app.key), &[], None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    app.get("/v1/settings/logo").await.problem(404);
    app.send("DELETE", "/v1/settings/logo", Some(&app.key), &[], None)
        .await
        .problem(404);
    app.stop().await;
}

#[tokio::test]
async fn a_logo_that_is_not_an_image_is_refused_naming_the_logo_and_the_old_one_stays() {
    let app = spawn_app().await;
    assert_eq!(app.put_logo("image/png", &png(50, 50)).await.status, 200);

    // Told apart by content, not by the Content-Type it claims.
    let problem = app
        .put_logo("image/png", b"GIF89a not a png")
        .await
        .problem(422);
    assert_eq!(problem["field"], "logo");
    assert!(
        problem["detail"].as_str().unwrap().contains("PNG or JPEG"),
        "{problem}"
    );
    let r = app.put_logo("image/jpeg", &png(300, 300)).await;
    assert_eq!(r.status, 200, "a PNG sent as image/jpeg is still a PNG");
    assert_eq!(r.json()["width"], 75);

    // A body that is not declared as an image is a mistake of the client's.
    app.put_logo("application/json", b"{}").await.problem(415);
    let mut big = jpeg(10, 10);
    big.resize(3 * 1024 * 1024, 0);
    let problem = app.put_logo("image/jpeg", &big).await.problem(422);
    assert!(
        problem["detail"].as_str().unwrap().contains("2 MB"),
        "{problem}"
    );

    let r = app.get("/v1/settings/logo").await;
    let image = image::load_from_memory(&r.body).unwrap();
    assert_eq!(
        (image.width(), image.height()),
        (75, 75),
        "the last good logo"
    );

    // Only with the practice's key.
    assert_eq!(
        app.send("GET", "/v1/settings/logo", None, &[], None)
            .await
            .status,
        401
    );
    app.stop().await;
}
