//! End-user binding (`daojia serve --end-user-keys`) through real gRPC clients: without it an
//! app-role token acts for anyone; with it, app-role calls need a valid `x-daojia-user` JWT
//! (HS256 or EdDSA, minted here with `jsonwebtoken` as an app backend would), may name only
//! its `sub` and touch only that user's orders, and refusals append nothing.

use base64::Engine as _;
use clap::Parser;
use daojia_domain::order::{self, DispatchMode, GeoPoint, OrderEvent, PostOrder, SlotIndex};
use daojia_domain::{
    CompanyId, CustomerId, OrderCommand, OrderId, OrderTerms, RegistryId, Standing, Timestamp,
    WorkerId,
};
use daojia_server::pb::customer_app_client::CustomerAppClient;
use daojia_server::pb::meta_client::MetaClient;
use daojia_server::pb::queries_client::QueriesClient;
use daojia_server::pb::worker_app_client::WorkerAppClient;
use daojia_server::pb::{self, ServerInfoRequest};
use daojia_server::{Cli, Clock, Command};
use daojia_store::EmbeddedStore;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::harness::{Serve, Started, as_};
use crate::seed::{NewWorker, Seeder};
use crate::store::{TempDir, tempdir};

const CUSTOMER_TOKEN: &str = "customer-token-0123456789";
const WORKER_TOKEN: &str = "worker-token-0123456789ab";
const OPS_TOKEN: &str = "ops-token-0123456789abcdef";

/// The manual clock's reading (order windows); assertions are checked against the system
/// clock, so they are minted relative to it.
const NOW: Timestamp = Timestamp(1_800_000_000_000);
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

const HOUSEHOLD: CustomerId = CustomerId::from_u128(0xC0);
const NEIGHBOUR: CustomerId = CustomerId::from_u128(0xC1);
/// Registered, certified, offered order [`OFFERED`].
const WORKER: WorkerId = WorkerId::from_u128(0xA1);
/// Registered and certified, no part in [`OFFERED`].
const OTHER_WORKER: WorkerId = WorkerId::from_u128(0xA5);
/// HOUSEHOLD's order, offered to WORKER before the server starts.
const OFFERED: OrderId = OrderId::from_u128(0x100);

const HS_SECRET: &[u8] = b"customer-backend-secret-of-32+bytes!";

/// The signing keys of the two app backends: an HS256 secret (customer backend) and an Ed25519
/// key pair (worker backend), and the keys file the server is given.
struct Keys {
    ed_pkcs8: Vec<u8>,
    file: std::path::PathBuf,
}

impl Keys {
    fn new(dir: &TempDir) -> Keys {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let file = dir.path().join("end-user-keys.txt");
        std::fs::write(
            &file,
            format!(
                "# app backends\ncustomer-backend HS256 {}\n\nworker-backend EdDSA {}\n",
                b64(HS_SECRET),
                b64(pair.public_key_raw())
            ),
        )
        .unwrap();
        Keys {
            ed_pkcs8: pair.serialize_der(),
            file,
        }
    }

    /// An HS256 assertion for `sub` expiring `exp_in` seconds from now (negative: past).
    fn hs256(&self, sub: &str, exp_in: i64) -> String {
        mint(
            "customer-backend",
            Algorithm::HS256,
            &EncodingKey::from_secret(HS_SECRET).unwrap(),
            sub,
            exp_in,
        )
    }

    /// An EdDSA assertion for `sub` expiring `exp_in` seconds from now.
    fn eddsa(&self, sub: &str, exp_in: i64) -> String {
        mint(
            "worker-backend",
            Algorithm::EdDSA,
            &EncodingKey::from_ed_der(&self.ed_pkcs8),
            sub,
            exp_in,
        )
    }
}

fn mint(kid: &str, alg: Algorithm, key: &EncodingKey, sub: &str, exp_in: i64) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap();
    let claims = serde_json::json!({ "sub": sub, "exp": now + exp_in });
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

/// `message` with the bearer `token` and, if given, the end-user `assertion`.
fn bound<T>(token: &str, assertion: Option<&str>, message: T) -> Request<T> {
    let mut request = as_(token, message);
    if let Some(a) = assertion {
        request
            .metadata_mut()
            .insert("x-daojia-user", a.parse().unwrap());
    }
    request
}

/// Two workers and HOUSEHOLD's order OFFERED to WORKER, appended before the server starts.
async fn seed(dir: &TempDir) {
    let store = EmbeddedStore::open(dir.path().join("data")).unwrap();
    let mut seeder = Seeder::new(
        store,
        CompanyId::from_u128(0xCC),
        RegistryId::from_u128(0x4E6),
        Timestamp(NOW.0 - 30 * DAY_MS),
    );
    for (id, identity) in [
        (WORKER, "110105198001010016"),
        (OTHER_WORKER, "110105198001010059"),
    ] {
        seeder
            .worker(NewWorker {
                id,
                identity,
                home: location(),
                contract: true,
                certified: true,
            })
            .await;
    }
    let post = PostOrder {
        order_id: OFFERED,
        customer: HOUSEHOLD,
        customer_standing: Standing::Good,
        service: "C01".parse().unwrap(),
        quantity: 3,
        workers: 1,
        window: order::ServiceWindow {
            start: Timestamp(NOW.0 + DAY_MS),
            end: Timestamp(NOW.0 + DAY_MS + 3 * HOUR_MS),
        },
        location: location(),
        dispatch: DispatchMode::Platform,
        terms: OrderTerms::default(),
    };
    let mut events = order::decide(
        &Default::default(),
        OrderCommand::Post(Box::new(post)),
        Timestamp(NOW.0 - HOUR_MS),
    )
    .unwrap();
    events.push(OrderEvent::OrderOffered {
        slot: SlotIndex(0),
        worker: WORKER,
        offered_at: Timestamp(NOW.0 - 60_000),
        expires_at: Timestamp(NOW.0 + 10 * 60_000),
    });
    seeder.append(&OFFERED.stream_name(), &events).await;
}

fn location() -> GeoPoint {
    GeoPoint::new(27.95, 116.36).unwrap()
}

/// Seeds `dir` and starts the server there with `args` (dispatcher and reactor off, so a
/// refused call is the only thing that could append).
async fn start(dir: &TempDir, args: &[&str]) -> Started {
    seed(dir).await;
    let datadir = dir.path().join("data");
    let tokens = format!("customer-app:{CUSTOMER_TOKEN},worker-app:{WORKER_TOKEN},ops:{OPS_TOKEN}");
    Serve {
        datadir: &datadir,
        tokens: &tokens,
        clock: Clock::manual(NOW),
        dispatch: false,
        reactor: false,
        args,
        service: "",
    }
    .start()
    .await
}

async fn stop(started: Started) {
    let _ = started.shutdown.send(());
    started.task.await.unwrap().unwrap();
}

async fn head(channel: &Channel) -> u64 {
    MetaClient::new(channel.clone())
        .server_info(as_(OPS_TOKEN, ServerInfoRequest {}))
        .await
        .unwrap()
        .into_inner()
        .head_position
}

fn id(n: u128) -> String {
    OrderId::from_u128(n).to_string()
}

fn post(command: u128, order: u128, customer: CustomerId) -> pb::PostOrderRequest {
    let at = |ms: i64| {
        Some(pb::Timestamp {
            seconds: ms / 1_000,
            nanos: 0,
        })
    };
    pb::PostOrderRequest {
        command_id: id(command),
        order_id: id(order),
        customer_id: customer.to_string(),
        service_code: "C01".into(),
        quantity: 3,
        workers: 1,
        window_start: at(NOW.0 + DAY_MS),
        window_end: at(NOW.0 + DAY_MS + 3 * HOUR_MS),
        location: Some(pb::LatLon {
            lat: 27.95,
            lon: 116.36,
        }),
        dispatch: None,
    }
}

fn cancel(command: u128, order: OrderId, customer: CustomerId) -> pb::CancelOrderRequest {
    pb::CancelOrderRequest {
        command_id: id(command),
        order_id: order.to_string(),
        customer_id: customer.to_string(),
        reason: "plans changed".into(),
    }
}

fn check_in(command: u128, worker: WorkerId) -> pb::CheckInRequest {
    pb::CheckInRequest {
        command_id: id(command),
        order_id: OFFERED.to_string(),
        worker_id: worker.to_string(),
        slot: 0,
        location: Some(pb::LatLon {
            lat: 27.95,
            lon: 116.36,
        }),
    }
}

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"))
        .reason
}

/// Asserts `status` is `code` with ErrorInfo `want` and a message containing `says`.
fn assert_refused(status: &Status, code: Code, want: &str, says: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(status), want, "{status:?}");
    assert!(status.message().contains(says), "{status:?}");
}

#[tokio::test]
async fn without_end_user_keys_app_tokens_act_for_any_household_as_before() {
    let dir = tempdir();
    let server = start(&dir, &[]).await;
    let mut customer = CustomerAppClient::new(server.channel.clone());
    // No assertion needed; one sent is ignored; the backend may act for any household.
    customer
        .post_order(as_(CUSTOMER_TOKEN, post(1, 0x200, NEIGHBOUR)))
        .await
        .unwrap();
    customer
        .cancel_order(bound(
            CUSTOMER_TOKEN,
            Some("not-a-jwt"),
            cancel(2, OFFERED, HOUSEHOLD),
        ))
        .await
        .unwrap();
    // A worker with no slot gets the domain's answer, not PERMISSION_DENIED.
    let status = WorkerAppClient::new(server.channel.clone())
        .check_in(as_(WORKER_TOKEN, check_in(3, OTHER_WORKER)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    stop(server).await;
}

#[tokio::test]
async fn a_household_bound_by_its_assertion_acts_only_for_itself_and_its_orders() {
    let dir = tempdir();
    let keys = Keys::new(&dir);
    let file = keys.file.to_str().unwrap().to_owned();
    let server = start(&dir, &["--end-user-keys", &file]).await;
    let mut customer = CustomerAppClient::new(server.channel.clone());
    let household = keys.hs256(&HOUSEHOLD.to_string(), 60);
    let neighbour = keys.hs256(&NEIGHBOUR.to_string(), 60);

    // A valid assertion passes: the household posts and reads its own order.
    let posted = customer
        .post_order(bound(
            CUSTOMER_TOKEN,
            Some(&household),
            post(1, 0x200, HOUSEHOLD),
        ))
        .await
        .unwrap()
        .into_inner();
    customer
        .get_order(bound(
            CUSTOMER_TOKEN,
            Some(&household),
            pb::GetOrderRequest {
                order_id: id(0x200),
                min_position: posted.commit_position,
            },
        ))
        .await
        .unwrap();
    let before = head(&server.channel).await;

    // Naming another household than the assertion's: PERMISSION_DENIED, nothing appended.
    let status = customer
        .post_order(bound(
            CUSTOMER_TOKEN,
            Some(&household),
            post(2, 0x201, NEIGHBOUR),
        ))
        .await
        .unwrap_err();
    let want = format!("customer_id {NEIGHBOUR} is not the end user");
    assert_refused(&status, Code::PermissionDenied, "END_USER_MISMATCH", &want);
    let status = customer
        .cancel_order(bound(
            CUSTOMER_TOKEN,
            Some(&household),
            cancel(3, OFFERED, NEIGHBOUR),
        ))
        .await
        .unwrap_err();
    assert_refused(&status, Code::PermissionDenied, "END_USER_MISMATCH", &want);

    // The neighbour cancelling, replanning or reading the household's order: refused.
    let not_theirs = format!("order {OFFERED} is not customer {NEIGHBOUR}'s");
    let status = customer
        .cancel_order(bound(
            CUSTOMER_TOKEN,
            Some(&neighbour),
            cancel(4, OFFERED, NEIGHBOUR),
        ))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::PermissionDenied,
        "NOT_END_USERS_ORDER",
        &not_theirs,
    );
    let status = customer
        .replan_order(bound(
            CUSTOMER_TOKEN,
            Some(&neighbour),
            pb::ReplanOrderRequest {
                command_id: id(5),
                order_id: OFFERED.to_string(),
                customer_id: NEIGHBOUR.to_string(),
                workers: 2,
            },
        ))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::PermissionDenied,
        "NOT_END_USERS_ORDER",
        &not_theirs,
    );
    let status = customer
        .get_order(bound(
            CUSTOMER_TOKEN,
            Some(&neighbour),
            pb::GetOrderRequest {
                order_id: OFFERED.to_string(),
                min_position: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::PermissionDenied,
        "NOT_END_USERS_ORDER",
        &not_theirs,
    );
    // Queries name only the end user too.
    let status = QueriesClient::new(server.channel.clone())
        .list_customer_orders(bound(
            CUSTOMER_TOKEN,
            Some(&neighbour),
            pb::ListCustomerOrdersRequest {
                customer_id: HOUSEHOLD.to_string(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::PermissionDenied,
        "END_USER_MISMATCH",
        "customer_id",
    );
    assert_eq!(
        head(&server.channel).await,
        before,
        "a refused call appended"
    );

    // The household itself may cancel it; ops tokens need no assertion.
    customer
        .cancel_order(bound(
            CUSTOMER_TOKEN,
            Some(&household),
            cancel(6, OFFERED, HOUSEHOLD),
        ))
        .await
        .unwrap();
    assert!(head(&server.channel).await > before);
    stop(server).await;
}

#[tokio::test]
async fn missing_expired_too_long_lived_or_garbage_assertions_are_unauthenticated() {
    let dir = tempdir();
    let keys = Keys::new(&dir);
    let file = keys.file.to_str().unwrap().to_owned();
    let server = start(
        &dir,
        &["--end-user-keys", &file, "--end-user-max-age", "120"],
    )
    .await;
    let mut customer = CustomerAppClient::new(server.channel.clone());
    let sub = HOUSEHOLD.to_string();
    let before = head(&server.channel).await;
    let forged = mint(
        "customer-backend",
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes").unwrap(),
        &sub,
        60,
    );
    let cases: [(Option<String>, &str, &str); 6] = [
        (None, "END_USER_ASSERTION_MISSING", "x-daojia-user"),
        (
            Some(keys.hs256(&sub, -3_600)),
            "END_USER_ASSERTION_EXPIRED",
            "`exp` has passed",
        ),
        (
            Some(keys.hs256(&sub, 86_400)),
            "END_USER_ASSERTION_TOO_LONG_LIVED",
            "more than 120 s ahead",
        ),
        (
            Some("garbage".into()),
            "END_USER_ASSERTION_INVALID",
            "not a JWT",
        ),
        (
            Some(forged),
            "END_USER_ASSERTION_INVALID",
            "signature does not verify",
        ),
        (
            Some(keys.hs256("household-7", 60)),
            "END_USER_ASSERTION_INVALID",
            "must be a customer id",
        ),
    ];
    for (assertion, want, says) in cases {
        let status = customer
            .cancel_order(bound(
                CUSTOMER_TOKEN,
                assertion.as_deref(),
                cancel(1, OFFERED, HOUSEHOLD),
            ))
            .await
            .unwrap_err();
        assert_refused(&status, Code::Unauthenticated, want, says);
    }
    assert_eq!(
        head(&server.channel).await,
        before,
        "a refused call appended"
    );
    stop(server).await;
}

#[tokio::test]
async fn a_worker_bound_by_an_eddsa_assertion_touches_only_orders_they_are_part_of() {
    let dir = tempdir();
    let keys = Keys::new(&dir);
    let file = keys.file.to_str().unwrap().to_owned();
    let server = start(&dir, &["--end-user-keys", &file]).await;
    let mut worker = WorkerAppClient::new(server.channel.clone());
    let other = keys.eddsa(&OTHER_WORKER.to_string(), 60);
    let before = head(&server.channel).await;

    // A worker checking in on an order where they hold no slot: PERMISSION_DENIED.
    let status = worker
        .check_in(bound(WORKER_TOKEN, Some(&other), check_in(1, OTHER_WORKER)))
        .await
        .unwrap_err();
    let not_theirs = format!("order {OFFERED} is not worker {OTHER_WORKER}'s");
    assert_refused(
        &status,
        Code::PermissionDenied,
        "NOT_END_USERS_ORDER",
        &not_theirs,
    );
    // Accepting another worker's offer in that worker's name: refused for the name.
    let status = worker
        .accept_offer(bound(
            WORKER_TOKEN,
            Some(&other),
            pb::AcceptOfferRequest {
                command_id: id(2),
                order_id: OFFERED.to_string(),
                worker_id: WORKER.to_string(),
                slot: 0,
            },
        ))
        .await
        .unwrap_err();
    let want = format!("worker_id {WORKER} is not the end user");
    assert_refused(&status, Code::PermissionDenied, "END_USER_MISMATCH", &want);
    // Watching another worker's notifications: refused.
    let status = worker
        .watch_notifications(bound(
            WORKER_TOKEN,
            Some(&other),
            pb::WatchNotificationsRequest {
                worker_id: WORKER.to_string(),
                after_position: None,
            },
        ))
        .await
        .unwrap_err();
    assert_refused(&status, Code::PermissionDenied, "END_USER_MISMATCH", &want);
    assert_eq!(
        head(&server.channel).await,
        before,
        "a refused call appended"
    );

    // The offered worker, with a valid EdDSA assertion, accepts; their own stream opens.
    let mine = keys.eddsa(&WORKER.to_string(), 60);
    let accepted = worker
        .accept_offer(bound(
            WORKER_TOKEN,
            Some(&mine),
            pb::AcceptOfferRequest {
                command_id: id(3),
                order_id: OFFERED.to_string(),
                worker_id: WORKER.to_string(),
                slot: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.event_types, ["OrderAccepted"]);
    worker
        .watch_notifications(bound(
            WORKER_TOKEN,
            Some(&mine),
            pb::WatchNotificationsRequest {
                worker_id: WORKER.to_string(),
                after_position: None,
            },
        ))
        .await
        .unwrap();
    // Any configured key may sign for either role: `sub` says who, the role what it is.
    let hs = keys.hs256(&WORKER.to_string(), 60);
    worker
        .update_location(bound(
            WORKER_TOKEN,
            Some(&hs),
            pb::UpdateLocationRequest {
                worker_id: WORKER.to_string(),
                location: Some(pb::LatLon {
                    lat: 27.95,
                    lon: 116.36,
                }),
            },
        ))
        .await
        .unwrap();
    stop(server).await;
}

#[test]
fn a_bad_end_user_keys_file_stops_startup_with_the_line_and_reason() {
    let dir = tempdir();
    let file = dir.path().join("keys.txt");
    let resolve = |text: &str, extra: &[&str]| {
        std::fs::write(&file, text).unwrap();
        let argv = ["daojia", "serve", "--end-user-keys", file.to_str().unwrap()]
            .into_iter()
            .chain(extra.iter().copied());
        let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not serve")
        };
        args.resolve(Some(&format!("ops:{OPS_TOKEN}")))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let cases = [
        (
            "app HS256 c2hvcnQ\n",
            "line 1: the HS256 secret of \"app\" is 5 bytes",
        ),
        (
            "# keys\napp PS256 c2hvcnQ\n",
            "line 2: unsupported algorithm \"PS256\"",
        ),
        (
            "app EdDSA c2hvcnQ\n",
            "an Ed25519 public key is the raw 32 bytes",
        ),
        ("", "no keys"),
    ];
    for (text, want) in cases {
        let err = resolve(text, &[]).unwrap_err();
        assert!(err.starts_with("invalid --end-user-keys file: "), "{err}");
        assert!(err.contains(want), "{text:?}: {err}");
        assert!(!err.contains("c2hvcnQ"), "key echoed: {err}");
    }
    let good = format!(
        "app HS256 {}\n",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(HS_SECRET)
    );
    resolve(&good, &[]).unwrap();
    let err = resolve(&good, &["--end-user-max-age", "0"]).unwrap_err();
    assert!(
        err.contains("--end-user-max-age must be at least 1"),
        "{err}"
    );
    let missing = [
        "daojia",
        "serve",
        "--end-user-keys",
        "/nonexistent/keys.txt",
    ];
    let Command::Serve(args) = Cli::try_parse_from(missing).unwrap().command else {
        panic!("not serve")
    };
    let err = args
        .resolve(Some(&format!("ops:{OPS_TOKEN}")))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot read end-user keys file /nonexistent/keys.txt"),
        "{err}"
    );
    // Binding needs tokens: it is refused with --insecure, and its options need the file.
    assert!(
        Cli::try_parse_from(["daojia", "serve", "--insecure", "--end-user-keys", "k"]).is_err()
    );
    assert!(Cli::try_parse_from(["daojia", "serve", "--end-user-max-age", "60"]).is_err());
}
