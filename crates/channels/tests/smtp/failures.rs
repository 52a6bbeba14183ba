//! How SMTP failures are classed, and connection reuse.

use super::*;

#[tokio::test]
async fn a_refused_recipient_is_a_permanent_failure() {
    let server = Server::start(Mode::RejectRecipient).await;
    let error = transport(&server.url(), Duration::from_secs(5))
        .send(&confirmation())
        .await
        .unwrap_err();
    let ChannelError::Permanent(reason) = &error else {
        panic!("permanent expected, got {error:?}");
    };
    assert!(reason.contains("550"), "{reason}");
    assert!(!error.is_retryable());
    assert!(server.deliveries().is_empty());
}

#[tokio::test]
async fn a_deferred_message_is_transient_and_its_retry_carries_the_same_message_id() {
    let server = Server::start(Mode::DeferAfterData).await;
    let transport = transport(&server.url(), Duration::from_secs(5));
    let message = confirmation();
    let error = transport.send(&message).await.unwrap_err();
    assert!(
        matches!(&error, ChannelError::Transient { reason, retry_after: None } if reason.contains("451")),
        "{error:?}"
    );
    server.set_mode(Mode::Accept);
    transport.send(&message).await.unwrap();

    let deliveries = server.deliveries();
    assert_eq!(
        deliveries.iter().map(|d| d.accepted).collect::<Vec<_>>(),
        [false, true]
    );
    let ids: Vec<String> = deliveries
        .iter()
        .map(|d| {
            parse_part(&d.data)
                .header("Message-ID")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0], message_id(&message));
}

#[tokio::test]
async fn a_server_that_is_down_is_a_transient_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = transport(&format!("smtp://{addr}"), Duration::from_secs(5))
        .send(&confirmation())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ChannelError::Transient { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out_as_transient_and_the_next_hand_off_starts_afresh() {
    let server = Server::start(Mode::Stall).await;
    let transport = transport(&server.url(), Duration::from_millis(500));
    let started = std::time::Instant::now();
    let error = transport.send(&confirmation()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(&error, ChannelError::Transient { reason, .. } if reason.contains("within")),
        "{error:?}"
    );
    server.set_mode(Mode::Accept);
    transport.send(&confirmation()).await.unwrap();
    assert_eq!(server.deliveries().len(), 1);
}

#[tokio::test]
async fn a_failed_tls_handshake_is_transient() {
    // The server speaks plain SMTP; the client expects implicit TLS.
    let server = Server::start(Mode::Accept).await;
    let error = transport(&format!("smtps://{}", server.addr), Duration::from_secs(5))
        .send(&confirmation())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ChannelError::Transient { .. }),
        "{error:?}"
    );
    assert!(server.deliveries().is_empty());
}

#[tokio::test]
async fn required_starttls_that_the_server_does_not_offer_is_transient_and_sends_nothing() {
    let server = Server::start(Mode::Accept).await;
    let error = transport(
        &format!("smtp://{}?tls=required", server.addr),
        Duration::from_secs(5),
    )
    .send(&confirmation())
    .await
    .unwrap_err();
    assert!(
        matches!(&error, ChannelError::Transient { .. }),
        "{error:?}"
    );
    assert!(server.deliveries().is_empty());
}

#[tokio::test]
async fn credentials_in_the_url_are_percent_decoded() {
    let server = Server::start(Mode::RequireAuth("relay", "p@ss:w0rd/")).await;
    transport(
        &format!("smtp://relay:p%40ss%3Aw0rd%2F@{}", server.addr),
        Duration::from_secs(5),
    )
    .send(&confirmation())
    .await
    .unwrap();
    assert_eq!(
        *server.logins.lock().unwrap(),
        [("relay".to_string(), "p@ss:w0rd/".to_string())]
    );
    assert_eq!(server.deliveries().len(), 1);
}

#[tokio::test]
async fn refused_credentials_are_transient_because_they_are_not_the_message_s_fault() {
    let server = Server::start(Mode::RequireAuth("relay", "right")).await;
    let error = transport(
        &format!("smtp://relay:wrong@{}", server.addr),
        Duration::from_secs(5),
    )
    .send(&confirmation())
    .await
    .unwrap_err();
    assert!(
        matches!(&error, ChannelError::Transient { reason, .. } if reason.contains("535")),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_unparsable_recipient_is_permanent_and_never_reaches_the_server() {
    let server = Server::start(Mode::Accept).await;
    let message = OutboundMessage {
        html: None,
        push: None,
        letter: None,
        logo: None,
        to: "jean.dupont(at)example.org".into(),
        ..confirmation()
    };
    let error = transport(&server.url(), Duration::from_secs(5))
        .send(&message)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ChannelError::Permanent(reason) if reason.contains("recipient")),
        "{error:?}"
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn connections_are_reused_from_one_message_to_the_next() {
    let server = Server::start(Mode::Accept).await;
    let transport = transport(&server.url(), Duration::from_secs(5));
    for key in ["a:1/confirmation/email/p", "a:2/confirmation/email/p"] {
        let message = OutboundMessage {
            html: None,
            push: None,
            letter: None,
            logo: None,
            id: key.into(),
            ..confirmation()
        };
        transport.send(&message).await.unwrap();
        // The connection goes back to the pool in a task of its own. On a paused clock this
        // sleep ends only when no task has anything left to do, that one included, however busy
        // the machine; the clock runs again for the next hand-off, whose timeouts are real.
        tokio::time::pause();
        tokio::time::sleep(Duration::from_millis(100)).await;
        tokio::time::resume();
    }
    assert_eq!(server.deliveries().len(), 2);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}
