//! Connecting: server features, gossip discovery, `requires-leader`, TLS with credentials and
//! roles, and the parts of the protocol daojia does not serve.

use std::time::Duration;

use kurrentdb::{
    AppendToStreamOptions, Authentication, BatchAppendOptions, Client, DeleteStreamOptions, Error,
    GetPersistentSubscriptionInfoOptions, ListPersistentSubscriptionsOptions,
    PersistentSubscriptionOptions, PersistentSubscriptionToAllOptions, ProjectionClient,
    ReadAllOptions, ReadStreamOptions, ReplayParkedMessagesOptions,
    RestartPersistentSubscriptionSubsystem, StreamState, SubscribeToAllOptions, SubscriptionEvent,
};

use crate::harness::{Server, client, collect, event, n_of};

/// Fails the test if `future` does not finish within seconds: unsupported calls must answer,
/// not hang.
async fn answered<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("no answer within 10 s")
}

async fn round_trip(client: &Client, stream: &str) {
    client
        .append_to_stream(
            stream,
            &AppendToStreamOptions::default(),
            event("Pinged", 7),
        )
        .await
        .unwrap();
    let events = collect(
        client
            .read_stream(stream, &ReadStreamOptions::default())
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(events.iter().map(n_of).collect::<Vec<_>>(), [7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_features_give_a_version_and_enable_batch_append() {
    let server = Server::insecure().await;
    let client = server.client();
    let info = answered(client.server_info()).await.unwrap();
    let version = info.version();
    assert!(
        version.major() >= 21,
        "a version with the 21.x+ features: {version}"
    );
    // The client refuses batch appends (UnsupportedFeature) unless the server advertises them.
    let batch = client
        .batch_append(&BatchAppendOptions::default())
        .await
        .unwrap();
    let written =
        answered(batch.append_to_stream("order-f", StreamState::NoStream, vec![event("A", 0)]))
            .await
            .unwrap();
    assert_eq!(written.current_revision(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_discovery_finds_the_single_leader() {
    let server = Server::insecure().await;
    // A seed where nothing listens (a port just released), next to the real one.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let addr = server.addr;
    let fast = "discoveryInterval=1&gossipTimeout=2000&maxDiscoverAttempts=5";
    for connection in [
        format!("kurrentdb+discover://{addr}?tls=false&{fast}"),
        format!("kurrentdb://{dead},{addr}?tls=false&{fast}"),
        format!("esdb://{addr},{addr}?tls=false&{fast}"),
    ] {
        let client = client(&connection);
        answered(round_trip(
            &client,
            &format!("order-gossip-{}", uuid::Uuid::new_v4()),
        ))
        .await;
        // The node gossip chose is the server itself.
        let info = answered(client.server_info()).await.unwrap();
        assert!(info.version().major() >= 21, "{connection}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requires_leader_is_accepted_either_way() {
    let server = Server::insecure().await;
    // The default node preference (leader) sends `requires-leader: true` on every call.
    let leader = client(&server.connection_string(None, "nodePreference=leader"));
    round_trip(&leader, "order-leader").await;
    let follower = client(&server.connection_string(None, "nodePreference=follower"));
    let events = collect(
        follower
            .read_stream(
                "order-leader",
                &ReadStreamOptions::default().requires_leader(true),
            )
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 1);
    follower
        .append_to_stream(
            "order-leader",
            &AppendToStreamOptions::default().requires_leader(false),
            event("Pinged", 8),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_credentials_maps_roles_and_refuses_wrong_ones() {
    let server = Server::tls().await;
    let admin = client(&server.connection_string(Some("root:admin-token-0123456789"), ""));
    answered(round_trip(&admin, "order-tls")).await;

    // Discovered through gossip over TLS (the advertised address must match the certificate).
    let discovered = client(
        &server
            .connection_string(Some("root:admin-token-0123456789"), "")
            .replace("kurrentdb://", "kurrentdb+discover://"),
    );
    answered(round_trip(&discovered, "order-tls-discovered")).await;

    // Without verifying the certificate, too.
    let ca = server.ca_file.as_ref().unwrap().display().to_string();
    let unverified = client(
        &server
            .connection_string(Some("root:admin-token-0123456789"), "tlsVerifyCert=false")
            .replace(&format!("&tlsCaFile={ca}"), ""),
    );
    answered(round_trip(&unverified, "order-tls-unverified")).await;

    // Analytics reads everything but writes nothing.
    let analytics =
        client(&server.connection_string(Some("reporter:analytics-token-0123456789"), ""));
    let events = collect(
        answered(analytics.read_all(&ReadAllOptions::default()))
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 3);
    let err = answered(analytics.append_to_stream(
        "order-tls",
        &AppendToStreamOptions::default(),
        event("Forbidden", 0),
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, Error::AccessDenied), "append: {err:?}");
    let err = answered(analytics.delete_stream("order-tls", &DeleteStreamOptions::default()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AccessDenied), "delete: {err:?}");
    let batch = analytics
        .batch_append(&BatchAppendOptions::default())
        .await
        .unwrap();
    let err = answered(batch.append_to_stream("order-tls", StreamState::Any, vec![event("F", 0)]))
        .await
        .unwrap_err();
    // BatchAppend answers write access per batch (as EventStoreDB does), on an open call: the
    // client reports a batch's error as a plain gRPC error with its code. (Refusing the whole
    // call raced with the client's first send: a batch sent after the refusal arrived got
    // "Batch-append stream has been closed" instead of the denial.)
    // (The client's tonic is its own version: compare the code's number, 7 PERMISSION_DENIED.)
    assert!(
        matches!(&err, Error::Grpc { code, .. } if i32::from(*code) == 7),
        "batch append: {err:?}"
    );
    // A bearer token given per call works as well as Basic credentials.
    let bearer = ReadStreamOptions::default()
        .authenticated(Authentication::bearer("analytics-token-0123456789"));
    let events = collect(analytics.read_stream("order-tls", &bearer).await.unwrap())
        .await
        .unwrap();
    assert_eq!(events.len(), 1);

    // Wrong or missing credentials are refused.
    for credentials in [
        Some("root:not-the-token-0123456789"),
        Some("nobody:admin-token-0123456789x"),
        None,
    ] {
        let stranger = client(&server.connection_string(credentials, ""));
        let err = match answered(stranger.read_stream("order-tls", &ReadStreamOptions::default()))
            .await
        {
            Err(e) => e,
            Ok(read) => answered(collect(read)).await.unwrap_err(),
        };
        assert!(
            matches!(err, Error::AccessDenied),
            "{credentials:?}: {err:?}"
        );
        let mut subscription = stranger
            .subscribe_to_all(&SubscribeToAllOptions::default())
            .await;
        let err = answered(subscription.next_subscription_event())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::AccessDenied),
            "{credentials:?}: {err:?}"
        );
    }

    // A plaintext client cannot talk to the TLS server.
    let plaintext = client(&format!(
        "kurrentdb://{}?tls=false&discoveryInterval=1",
        server.addr
    ));
    let err = answered(plaintext.read_stream("order-tls", &ReadStreamOptions::default()))
        .await
        .err();
    assert!(err.is_some(), "a plaintext client was served over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unserved_parts_of_the_protocol_answer_unsupported_instead_of_hanging() {
    let server = Server::insecure().await;
    let client = server.client();

    // Persistent subscriptions: none exist, creating one is not supported.
    let listed = answered(
        client.list_all_persistent_subscriptions(&ListPersistentSubscriptionsOptions::default()),
    )
    .await
    .unwrap();
    assert!(listed.is_empty());
    let err = answered(client.create_persistent_subscription(
        "order-p",
        "group",
        &PersistentSubscriptionOptions::default(),
    ))
    .await
    .unwrap_err();
    assert!(err.is_unsupported_feature(), "create: {err:?}");
    let err = answered(client.get_persistent_subscription_info(
        "order-p",
        "group",
        &GetPersistentSubscriptionInfoOptions::default(),
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, Error::ResourceNotFound), "info: {err:?}");
    let err = answered(client.replay_parked_messages(
        "order-p",
        "group",
        &ReplayParkedMessagesOptions::default(),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::ResourceNotFound),
        "replay parked: {err:?}"
    );
    answered(client.restart_persistent_subscription_subsystem(
        &RestartPersistentSubscriptionSubsystem::default(),
    ))
    .await
    .unwrap();
    // To $all: the server does not advertise persistent subscriptions to $all at all.
    let err = answered(client.create_persistent_subscription_to_all(
        "group",
        &PersistentSubscriptionToAllOptions::default(),
    ))
    .await
    .unwrap_err();
    assert!(err.is_unsupported_feature(), "create to $all: {err:?}");
    let err = match answered(client.subscribe_to_persistent_subscription(
        "order-p",
        "group",
        &Default::default(),
    ))
    .await
    {
        Err(e) => e,
        Ok(mut persistent) => answered(persistent.next()).await.unwrap_err(),
    };
    assert!(
        err.is_unsupported_feature(),
        "persistent subscribe: {err:?}"
    );

    // Projections.
    let projections =
        ProjectionClient::new(server.connection_string(None, "").parse().unwrap()).unwrap();
    let err = answered(projections.create("p", "fromAll()".to_string(), &Default::default()))
        .await
        .unwrap_err();
    assert!(err.is_unsupported_feature(), "projection create: {err:?}");
    let err = answered(projections.get_status("p", &Default::default()))
        .await
        .unwrap_err();
    assert!(err.is_unsupported_feature(), "projection status: {err:?}");

    // Users and operations (scavenging, shutting the node down).
    let operations =
        kurrentdb::operations::Client::new(server.connection_string(None, "").parse().unwrap())
            .unwrap();
    let err = answered(operations.create_user(
        "someone",
        "secret",
        "Some One",
        Vec::new(),
        &Default::default(),
    ))
    .await
    .unwrap_err();
    assert!(err.is_unsupported_feature(), "create user: {err:?}");
    let err = answered(operations.start_scavenge(1, 0, &Default::default()))
        .await
        .unwrap_err();
    assert!(err.is_unsupported_feature(), "scavenge: {err:?}");
    let err = answered(operations.shutdown(&Default::default()))
        .await
        .unwrap_err();
    assert!(err.is_unsupported_feature(), "shutdown: {err:?}");

    // The connection is still fine afterwards.
    answered(round_trip(&client, "order-after-unsupported")).await;
    let mut sub = client
        .subscribe_to_all(&SubscribeToAllOptions::default())
        .await;
    assert!(matches!(
        answered(sub.next_subscription_event()).await.unwrap(),
        SubscriptionEvent::Confirmed(_)
    ));
}
