//! The credit read model: scores, history, red and black lists.

use daojia_domain::credit::{CreditCommand, CreditEvent, RuleId, Standing, Subject, SubjectKind};
use daojia_domain::{Minutes, Timestamp};
use daojia_projections::Projector;
use daojia_projections::credit::CreditView;

use crate::support::{T0, WAIT, World, customer, worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_history_and_red_and_black_lists() {
    let mut world = World::new("credit");
    let projector = Projector::spawn(world.store.clone(), CreditView::default);
    let late_worker = Subject::Worker(worker(1));
    let star_worker = Subject::Worker(worker(2));
    let bad_customer = Subject::Customer(customer(1));
    world.publish_rules(T0).await;
    let rule = RuleId::new("worker.late_check_in").unwrap();
    for i in 0..2 {
        let evidence = world.next_event_id();
        world
            .credit(
                late_worker,
                CreditCommand::ApplyRule {
                    rule: rule.clone(),
                    evidence,
                    order: None,
                    fact: None,
                },
                T0.plus(Minutes(i)),
            )
            .await;
    }
    world
        .credit(
            bad_customer,
            CreditCommand::BlackList {
                reason: "abuse of workers".into(),
            },
            T0,
        )
        .await;
    let last = world
        .append(
            &star_worker.stream_name(),
            &[CreditEvent::RedListed {
                subject: star_worker,
                at: Timestamp(T0.0 + 1),
            }],
        )
        .await;
    projector.wait_for(last, WAIT).await.unwrap();

    projector.read(|v| {
        assert_eq!(v.rule_set().map(|r| r.version), Some(1));
        let base = v.rule_set().unwrap().base_score;
        let score = v.score(late_worker).unwrap();
        assert!(score < base, "{score} < {base}");
        assert_eq!(v.score(star_worker), Some(base));
        assert_eq!(v.standing(late_worker), Standing::Warned);
        let adjusted = v
            .history(late_worker)
            .iter()
            .filter(|e| matches!(e.event, CreditEvent::CreditAdjusted { .. }))
            .count();
        assert_eq!(adjusted, 2);
        assert!(
            v.history(late_worker)
                .windows(2)
                .all(|w| w[0].position < w[1].position)
        );
        assert_eq!(v.black_list(None), vec![bad_customer]);
        assert_eq!(v.black_list(Some(SubjectKind::Worker)), vec![]);
        assert_eq!(v.red_list(None), vec![star_worker]);
        assert_eq!(v.standing(bad_customer), Standing::BlackListed);
    });
}
