//! The query service (`daojia.v1.Queries`) through a real tonic client against the server on
//! 127.0.0.1:0: read-your-writes with a command's commit position, pagination and roles (a
//! `min_position` at or beyond the head is in `rules_ops.rs`).

use daojia_domain::Timestamp;
use daojia_server::pb::customer_app_client::CustomerAppClient;
use daojia_server::pb::queries_client::QueriesClient;
use daojia_server::pb::{self};
use daojia_server::{Clock, ServeError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::store::{TempDir, tempdir};

pub(crate) const CUSTOMER_TOKEN: &str = "customer-token-0123456789";
const WORKER_TOKEN: &str = "worker-token-0123456789ab";
pub(crate) const OPS_TOKEN: &str = "ops-token-0123456789abcdef";
const ANALYTICS_TOKEN: &str = "analytics-token-0123456789";

/// 2027-01-15T08:00:00Z, the manual clock's reading.
const NOW: Timestamp = Timestamp(1_800_000_000_000);
const DAY_MS: i64 = 86_400_000;

pub(crate) struct QueryServer {
    pub(crate) channel: Channel,
    pub(crate) addr: std::net::SocketAddr,
    dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl QueryServer {
    /// Starts the server with a 100 ms bound on the `min_position` wait.
    pub(crate) async fn start() -> QueryServer {
        QueryServer::start_in(tempdir()).await
    }

    /// Starts the server on `dir/data` (which may hold events already).
    async fn start_in(dir: TempDir) -> QueryServer {
        let datadir = dir.path().join("data");
        let tokens = format!(
            "customer-app:{CUSTOMER_TOKEN},worker-app:{WORKER_TOKEN},ops:{OPS_TOKEN},\
             analytics:{ANALYTICS_TOKEN}"
        );
        // The read side is tested against client commands only.
        let crate::harness::Started {
            channel,
            addr,
            shutdown: tx,
            task,
        } = crate::harness::Serve {
            datadir: &datadir,
            tokens: &tokens,
            clock: Clock::manual(NOW),
            dispatch: false,
            reactor: true,
            args: &["--query-wait-ms", "100"],
            service: "daojia.v1.Queries",
        }
        .start()
        .await;
        QueryServer {
            channel,
            addr,
            dir,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub(crate) fn queries(&self) -> QueriesClient<Channel> {
        QueriesClient::new(self.channel.clone())
    }

    /// Posts order `order` for customer `customer`; returns the commit position.
    async fn post(&self, customer: u128, order: u128) -> u64 {
        CustomerAppClient::new(self.channel.clone())
            .post_order(as_(CUSTOMER_TOKEN, post_request(customer, order)))
            .await
            .unwrap()
            .into_inner()
            .commit_position
    }

    /// Stops the server; it must stop cleanly (the projector releases the store).
    pub(crate) async fn stop(self) {
        self.stop_keeping_data().await;
    }

    /// Stops the server and returns its data directory.
    async fn stop_keeping_data(mut self) -> TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().unwrap().await.unwrap().unwrap();
        std::mem::replace(&mut self.dir, tempdir())
    }
}

/// A valid `PostOrder` of order `order` for customer `customer`, a day from now.
pub(crate) fn post_request(customer: u128, order: u128) -> pb::PostOrderRequest {
    pb::PostOrderRequest {
        command_id: id(0x1000 + order),
        order_id: id(order),
        customer_id: id(customer),
        service_code: "C01".into(),
        quantity: 3,
        workers: 1,
        window_start: at(NOW.0 + DAY_MS),
        window_end: at(NOW.0 + DAY_MS + 3 * 3_600_000),
        location: Some(pb::LatLon {
            lat: 27.95,
            lon: 116.36,
        }),
        dispatch: None,
    }
}

pub(crate) use crate::harness::as_;

pub(crate) fn id(n: u128) -> String {
    daojia_domain::OrderId::from_u128(n).to_string()
}

fn at(ms: i64) -> Option<pb::Timestamp> {
    Some(pb::Timestamp {
        seconds: ms / 1_000,
        nanos: 0,
    })
}

fn list_customer(
    customer: u128,
    min_position: u64,
    page_size: u32,
    page_token: &str,
) -> pb::ListCustomerOrdersRequest {
    pb::ListCustomerOrdersRequest {
        customer_id: id(customer),
        min_position,
        page_size,
        page_token: page_token.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_orders_are_listed_at_once_with_the_commit_position_and_paginate() {
    let server = QueryServer::start().await;
    let mut queries = server.queries();
    let mut last = 0;
    for order in [0x0A, 0x0B, 0x0C] {
        last = server.post(0xC1, order).await;
    }
    server.post(0xC2, 0x0D).await;

    // Read-your-writes: no retry loop, no sleep; the reply reflects the commit position.
    let first = queries
        .list_customer_orders(as_(CUSTOMER_TOKEN, list_customer(0xC1, last, 2, "")))
        .await
        .unwrap()
        .into_inner();
    assert!(first.position >= last, "{} < {last}", first.position);
    let ids: Vec<_> = first
        .orders
        .iter()
        .map(|o| o.order.as_ref().unwrap().order_id.clone())
        .collect();
    assert_eq!(ids, [id(0x0A), id(0x0B)]);
    let entry = &first.orders[0];
    assert_eq!(
        entry.order.as_ref().unwrap().phase,
        pb::OrderPhase::Open as i32
    );
    assert_eq!(entry.order.as_ref().unwrap().customer_id, id(0xC1));
    assert_eq!(entry.posted_at, at(NOW.0));
    assert!(!first.next_page_token.is_empty());

    let second = queries
        .list_customer_orders(as_(
            CUSTOMER_TOKEN,
            list_customer(0xC1, last, 2, &first.next_page_token),
        ))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = second
        .orders
        .iter()
        .map(|o| o.order.as_ref().unwrap().order_id.clone())
        .collect();
    assert_eq!(ids, [id(0x0C)]);
    assert_eq!(second.next_page_token, "");

    // Ops sees the same; a bad page token is a field violation.
    let all = queries
        .list_customer_orders(as_(OPS_TOKEN, list_customer(0xC1, last, 0, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.orders.len(), 3);
    let bad = queries
        .list_customer_orders(as_(OPS_TOKEN, list_customer(0xC1, 0, 0, "not-a-token")))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<_> = bad
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["page_token"]);

    // KPIs count every posted order at the same position.
    let kpis = queries
        .get_kpis(as_(
            ANALYTICS_TOKEN,
            pb::GetKpisRequest {
                breakdown: pb::KpiBreakdown::Day as i32,
                min_position: last,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kpis.rows.len(), 1);
    assert_eq!(kpis.rows[0].key, "2027-01-15");
    assert_eq!(kpis.rows[0].counts.unwrap().posted, 4);
    assert_eq!(kpis.rows[0].fill_rate_bp, Some(0));
    assert!(kpis.position >= last);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_kpis_prints_the_kpi_rows_as_json_and_as_a_table() {
    let server = QueryServer::start().await;
    server.post(0xC1, 0x0A).await;
    let last = server.post(0xC2, 0x0B).await;
    let min = last.to_string();
    let cli = |args: &'static [&'static str]| {
        let min = min.clone();
        let addr = server.addr;
        async move {
            let mut argv: Vec<&str> = args.to_vec();
            argv.extend(["--min-position", &min]);
            crate::harness::admin_cli(addr, ANALYTICS_TOKEN, &argv).await
        }
    };

    let json = cli(&["--json", "kpis", "--breakdown", "day"])
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows = value["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{value}");
    assert_eq!(rows[0]["key"], "2027-01-15");
    assert_eq!(rows[0]["posted"], 2);
    assert_eq!(rows[0]["filled"], 0);
    assert_eq!(rows[0]["fill_rate_bp"], 0);
    // No review yet: the rate's denominator is 0, so it is null, not 0.
    assert_eq!(rows[0]["good_review_rate_bp"], serde_json::Value::Null);
    assert!(value["position"].as_u64().unwrap() >= last);
    assert_eq!(value["next_page_token"], "");

    // The default breakdown is the total; the table has a header and one row.
    let table = cli(&["kpis"]).await.unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("key"), "{table}");
    assert!(lines[0].contains("posted"), "{table}");
    assert!(lines[1].starts_with("total"), "{table}");
    assert!(table.contains("1 row(s) at position"), "{table}");

    let json = cli(&["--json", "kpis", "--breakdown", "category"])
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["rows"][0]["key"], "cleaning", "{value}");
    assert_eq!(value["rows"][0]["posted"], 2);

    // A customer token may not read KPIs.
    let refused = crate::harness::admin_cli(server.addr, CUSTOMER_TOKEN, &["kpis"])
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            daojia_server::admin_cli::CliError::Refused {
                code: Code::PermissionDenied,
                ..
            }
        ),
        "{refused:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_see_only_their_queries() {
    let server = QueryServer::start().await;
    let mut queries = server.queries();
    let position = server.post(0xC1, 0x0A).await;

    let denied = queries
        .list_customer_orders(as_(ANALYTICS_TOKEN, list_customer(0xC1, position, 0, "")))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert_eq!(
        denied.get_details_error_info().unwrap().reason,
        "ROLE_NOT_ALLOWED"
    );

    let kpis = pb::GetKpisRequest {
        min_position: position,
        ..Default::default()
    };
    let denied = queries
        .get_kpis(as_(CUSTOMER_TOKEN, kpis.clone()))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let total = queries
        .get_kpis(as_(ANALYTICS_TOKEN, kpis))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(total.rows[0].key, "total");
    assert_eq!(total.rows[0].counts.unwrap().posted, 1);

    let open = pb::ListOpenRequest {
        min_position: position,
        ..Default::default()
    };
    for token in [CUSTOMER_TOKEN, WORKER_TOKEN, ANALYTICS_TOKEN] {
        let denied = queries
            .list_open_complaints(as_(token, open.clone()))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "{token}");
    }
    let complaints = queries
        .list_open_complaints(as_(OPS_TOKEN, open))
        .await
        .unwrap()
        .into_inner();
    assert!(complaints.complaints.is_empty());
    assert!(complaints.position >= position);

    // A customer's credit is for the customer app; a worker's for the worker app.
    let credit = |kind: pb::CreditSubjectKind| pb::GetCreditRequest {
        subject: Some(pb::CreditSubject {
            kind: kind as i32,
            id: id(0xC1),
        }),
        min_position: position,
        ..Default::default()
    };
    let good = queries
        .get_credit(as_(CUSTOMER_TOKEN, credit(pb::CreditSubjectKind::Customer)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(good.standing, pb::CreditStanding::Good as i32);
    assert!(good.history.is_empty());
    let denied = queries
        .get_credit(as_(WORKER_TOKEN, credit(pb::CreditSubjectKind::Customer)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // A worker nobody has heard of.
    let missing = queries
        .get_worker_profile(as_(
            WORKER_TOKEN,
            pb::GetWorkerProfileRequest {
                worker_id: id(0x77),
                min_position: position,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(
        missing.get_details_error_info().unwrap().reason,
        "WORKER_NOT_FOUND"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_queries_answer_the_same_from_the_replayed_log() {
    let server = QueryServer::start().await;
    let mut last = 0;
    for order in [0x0A, 0x0B] {
        last = server.post(0xC1, order).await;
    }
    let before = server
        .queries()
        .list_customer_orders(as_(OPS_TOKEN, list_customer(0xC1, last, 0, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before.orders.len(), 2);
    // The projector holds the store; stopping must release it so that it reopens.
    let dir = server.stop_keeping_data().await;

    let server = QueryServer::start_in(dir).await;
    let after = server
        .queries()
        .list_customer_orders(as_(OPS_TOKEN, list_customer(0xC1, last, 0, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after, before);
    server.stop().await;
}
