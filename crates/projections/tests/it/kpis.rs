//! The KPI read model.

use daojia_domain::catalog::Category;
use daojia_domain::certificates::{CertificateEvent, CertificateKind, IdentityNumber};
use daojia_domain::order::{ComplaintCategory, GeoPoint};
use daojia_domain::{CertificateId, CompanyId, ComplaintId, Minutes, OrderCommand, RegistryId};
use daojia_projections::Projector;
use daojia_projections::kpis::{County, Day, KpisView};

use crate::support::{HOME, T0, Visit, WAIT, World, customer, order_id, worker};

fn counties() -> Vec<County> {
    vec![
        County {
            name: "临川区".into(),
            seat: HOME,
        },
        County {
            name: "far away".into(),
            seat: GeoPoint::new(27.0, 116.0).unwrap(),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpis_by_total_company_category_county_and_day() {
    let mut world = World::new("kpis");
    let projector = Projector::spawn(world.store.clone(), || KpisView::new(counties()));
    let (company_a, company_b) = (CompanyId::from_u128(0xA), CompanyId::from_u128(0xB));
    let registry = RegistryId::from_u128(0xAB);
    for (n, company) in [(1u128, company_a), (2, company_b)] {
        world
            .append(
                &registry.stream_name(),
                &[CertificateEvent::CertificateIssued {
                    certificate_id: CertificateId::from_u128(0xCE + n),
                    worker: worker(n),
                    identity: IdentityNumber::new("11010519491231002X").unwrap(),
                    company,
                    kind: CertificateKind::HomeVisit,
                    issued_at: T0,
                    valid_until: T0.plus(Minutes::days(365)),
                }],
            )
            .await;
    }
    // Order 1: on time, 5 stars. Order 2, ten days later by the same customer (a repurchase):
    // 20 minutes late, 3 stars, then a complaint. Order 3: never taken.
    world
        .full_order(order_id(1), customer(1), worker(1), T0, Visit::good())
        .await;
    let later = T0.plus(Minutes::days(10));
    let visit = Visit {
        late: 20,
        stars: 3,
        tags: Vec::new(),
    };
    world
        .full_order(order_id(2), customer(1), worker(2), later, visit)
        .await;
    world
        .order(
            order_id(2),
            OrderCommand::FileComplaint {
                complaint_id: ComplaintId::from_u128(1),
                customer: customer(1),
                against: worker(2),
                category: ComplaintCategory::Quality,
                text: "late and sloppy".into(),
            },
            later.plus(Minutes::days(2)),
        )
        .await;
    let last = world.post(order_id(3), customer(2), T0).await;
    projector.wait_for(last, WAIT).await.unwrap();

    projector.read(|k| {
        let t = k.total;
        assert_eq!((t.posted, t.filled, t.served), (3, 2, 2));
        assert_eq!(t.fill_rate(), Some(6_666));
        assert_eq!(t.lateness_rate(), Some(5_000));
        assert_eq!(t.good_review_rate(), Some(5_000));
        assert_eq!(t.satisfaction(), Some(400));
        assert_eq!(t.complaint_rate(), Some(5_000));
        assert_eq!(t.repurchase_rate(), Some(5_000));
        assert_eq!(t.mean_minutes_to_accept(), Some(2));

        let a = k.company(company_a);
        assert_eq!((a.served, a.reviews, a.good_reviews), (1, 1, 1));
        assert_eq!(a.repurchase_rate(), Some(10_000));
        assert_eq!(a.lateness_rate(), Some(0));
        let b = k.company(company_b);
        assert_eq!(b.lateness_rate(), Some(10_000));
        assert_eq!(b.complaint_rate(), Some(10_000));
        assert_eq!(b.satisfaction(), Some(300));
        assert_eq!(b.fill_rate(), None);

        assert_eq!(k.category(Category::Cleaning), t);
        assert_eq!(k.category(Category::Eldercare).posted, 0);
        assert_eq!(k.county("临川区"), t);
        assert_eq!(k.county("far away").posted, 0);

        let first_day = k.day(Day::of(T0));
        assert_eq!((first_day.posted, first_day.served), (2, 1));
        let second_day = k.day(Day::of(later));
        assert_eq!((second_day.posted, second_day.complaints), (1, 1));
        assert_eq!(k.by_day().count(), 2);
    });
}

#[test]
fn days_are_china_calendar_days() {
    // 2023-11-14T15:59:59Z is 23:59:59 in Beijing; one second later is the next day there.
    let before = daojia_domain::Timestamp(1_699_977_599_000);
    let after = daojia_domain::Timestamp(1_699_977_600_000);
    assert_eq!(Day::of(after).0 - Day::of(before).0, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_attributed_to_fuzhou_counties() {
    use daojia_projections::counties;

    let mut world = World::new("kpis-fuzhou");
    let projector = Projector::spawn(world.store.clone(), || KpisView::new(counties::fuzhou()));
    world.post(order_id(1), customer(1), T0).await;
    let last = world.post(order_id(2), customer(2), T0).await;
    projector.wait_for(last, WAIT).await.unwrap();
    projector.read(|k| {
        // The fixtures' home is in the city centre, in 临川区.
        assert_eq!(k.county("临川区").posted, 2);
        let listed: Vec<&str> = k.by_county().map(|(name, _)| name).collect();
        assert_eq!(listed, vec!["临川区"]);
        assert_eq!(k.county(daojia_projections::kpis::UNKNOWN_COUNTY).posted, 0);
    });
    assert_eq!(counties::fuzhou().len(), 11);
}

#[test]
fn a_county_list_is_read_from_json_shaped_like_the_reference_data() {
    use daojia_projections::counties;

    let json = r#"{"city": {"name_zh": "抚州市"}, "counties": [
        {"id": "linchuan", "zh": "临川区", "lat": 27.977, "lon": 116.312, "share": 0.30},
        {"id": "nancheng", "zh": "南城县", "lat": 27.569, "lon": 116.637, "share": 0.09}
    ]}"#;
    let list = counties::from_json(json.as_bytes()).unwrap();
    let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["临川区", "南城县"]);
    assert_eq!(
        list[1].seat,
        GeoPoint {
            lat: 27.569,
            lon: 116.637
        }
    );
    // The built-in list agrees with the reference data for the seats both name.
    let builtin = counties::fuzhou();
    for county in &list {
        assert!(builtin.contains(county), "{}", county.name);
    }

    for (bad, why) in [
        (r#"{"counties": []}"#, "empty"),
        (
            r#"{"counties": [{"zh": "x", "lat": 95.0, "lon": 1.0}]}"#,
            "out of range",
        ),
        (
            r#"{"counties": [{"zh": "x", "lat": 1.0, "lon": 1.0}, {"zh": "x", "lat": 2.0, "lon": 2.0}]}"#,
            "twice",
        ),
        (
            r#"{"counties": [{"zh": " ", "lat": 1.0, "lon": 1.0}]}"#,
            "empty name",
        ),
        (r#"{"cities": []}"#, "missing field"),
    ] {
        let err = counties::from_json(bad.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("bad county list"), "{err}");
        assert!(err.to_lowercase().contains(why), "{bad}: {err}");
    }
}
