//! Persisted checkpoints: resuming from a snapshot, falling back to a full replay when the
//! snapshot cannot be trusted, and checkpoints written by rebuilds and by count.

use std::path::Path;

use daojia_domain::credit::{CreditCommand, RuleId, Subject};
use daojia_domain::order::{ComplaintCategory, Party};
use daojia_domain::{ComplaintId, Minutes, OrderCommand, OrderPhase};
use daojia_projections::checkpoint::{self, FORMAT_VERSION, Unusable, model_config};
use daojia_projections::kpis::{County, KpisView};
use daojia_projections::{CheckpointConfig, Projector, ReadModels};
use daojia_store::{AllStart, Direction, EmbeddedStore, EventStore, Position};

use crate::support::{HOME, T0, TempDir, Visit, WAIT, World, customer, order_id, worker};

/// Checkpoints only when asked (or after a rebuild): the tests decide when one is written.
fn on_request(dir: &Path) -> CheckpointConfig {
    CheckpointConfig {
        dir: dir.to_owned(),
        every_events: 0,
        every_interval: None,
    }
}

/// Orders in every phase, a complaint, a cancellation and credit events; returns the last
/// position.
async fn history(world: &mut World) -> Position {
    world.publish_rules(T0).await;
    for n in 0..4 {
        let visit = Visit {
            late: u32::try_from(n * 20).unwrap(),
            stars: 5 - u8::try_from(n).unwrap(),
            tags: Vec::new(),
        };
        world
            .full_order(order_id(n), customer(n % 2), worker(n % 3), T0, visit)
            .await;
    }
    world.post(order_id(9), customer(1), T0).await;
    world.assign(order_id(9), worker(1), T0).await;
    world
        .order(
            order_id(9),
            OrderCommand::Cancel {
                by: Party::Customer(customer(1)),
                reason: "moved".into(),
            },
            T0.plus(Minutes(5)),
        )
        .await;
    world
        .order(
            order_id(3),
            OrderCommand::FileComplaint {
                complaint_id: ComplaintId::from_u128(1),
                customer: customer(1),
                against: worker(0),
                category: ComplaintCategory::Conduct,
                text: "rude".into(),
            },
            T0.plus(Minutes::days(2)),
        )
        .await;
    let evidence = world.next_event_id();
    world
        .credit(
            Subject::Worker(worker(0)),
            CreditCommand::ApplyRule {
                rule: RuleId::new("worker.late_check_in").unwrap(),
                evidence,
                order: None,
                fact: None,
            },
            T0.plus(Minutes::days(2)),
        )
        .await
}

/// Events in the store after `after` (all of them for `Position::START`).
async fn events_after(store: &EmbeddedStore, after: Position) -> u64 {
    let page = store
        .read_all(Direction::Forwards, AllStart::Edge, 1_000_000, None)
        .await
        .unwrap();
    page.events.iter().filter(|e| e.position > after).count() as u64
}

/// The model a plain projector builds by replaying everything up to `last`.
async fn full_replay(world: &World, last: Position) -> ReadModels {
    let projector = Projector::spawn(world.store.clone(), ReadModels::default);
    projector.wait_for(last, WAIT).await.unwrap();
    projector.read(Clone::clone)
}

/// A few answers the query service gives, to compare models by what they answer.
fn answers(m: &ReadModels) -> impl PartialEq + std::fmt::Debug {
    (
        m.orders.len(),
        m.orders.by_phase(OrderPhase::Reviewed).count(),
        m.orders.by_customer(customer(1)).count(),
        m.workers.get(worker(0)).map(|w| w.completed_visits),
        m.credit
            .score(Subject::Worker(worker(0)))
            .zip(Some(m.credit.history(Subject::Worker(worker(0))).len())),
        m.ops.open_complaints().len(),
        m.kpis.total,
    )
}

/// Writes a checkpoint of `world` at its current end into `dir` and returns its position.
async fn take_checkpoint(world: &World, dir: &Path, last: Position) -> Position {
    let projector =
        Projector::spawn_with(world.store.clone(), ReadModels::default, on_request(dir));
    projector.wait_for(last, WAIT).await.unwrap();
    let at = projector.checkpoint().await.unwrap();
    assert_eq!(at, Some(last));
    assert_eq!(projector.progress().checkpoint, Some(last));
    projector.stop().await;
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_checkpoint_with_the_model_a_full_replay_builds() {
    let mut world = World::new("ckpt-resume");
    let dir = TempDir::new("ckpt-resume-dir");
    let last = history(&mut world).await;
    let at = take_checkpoint(&world, &dir.0, last).await;

    // Later events, applied live after the restart.
    world.post(order_id(20), customer(3), T0).await;
    let more = world.assign(order_id(20), worker(2), T0).await;

    let resumed =
        Projector::spawn_with(world.store.clone(), ReadModels::default, on_request(&dir.0));
    resumed.wait_for(more, WAIT).await.unwrap();
    let progress = resumed.progress();
    assert_eq!(progress.restored_from, Some(at));
    assert_eq!(progress.checkpoint, Some(at));
    // Only the events after the checkpoint were read and applied.
    assert_eq!(progress.events, events_after(&world.store, at).await);
    assert_eq!(progress.events, 3, "post (1 event), offer and accept");
    let lag = resumed.lag().await.unwrap();
    assert_eq!(lag.checkpoint, Some(at));
    assert_eq!(lag.behind, 0);

    let full = full_replay(&world, more).await;
    let model = resumed.read(Clone::clone);
    assert_eq!(answers(&model), answers(&full));
    assert_eq!(model, full);
    assert_eq!(model.orders.len(), 6);
}

/// Ways a checkpoint file goes bad.
#[derive(Clone, Copy, Debug)]
enum Damage {
    Missing,
    Truncated,
    FlippedByte,
    WrongVersion,
    Garbage,
}

fn damage(bytes: &mut Vec<u8>, how: Damage) {
    match how {
        Damage::Missing => bytes.clear(),
        Damage::Truncated => bytes.truncate(bytes.len() - 7),
        Damage::FlippedByte => {
            let middle = checkpoint::HEADER_LEN + (bytes.len() - checkpoint::HEADER_LEN) / 2;
            bytes[middle] ^= 0x20;
        }
        Damage::WrongVersion => bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes()),
        Damage::Garbage => bytes.truncate(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_checkpoint_falls_back_to_a_full_replay_with_an_equal_model() {
    let mut world = World::new("ckpt-damaged");
    let good = TempDir::new("ckpt-damaged-good");
    let last = history(&mut world).await;
    take_checkpoint(&world, &good.0, last).await;
    let file = on_request(&good.0).path("all");
    let original = std::fs::read(&file).unwrap();
    let config = model_config(&ReadModels::default());
    assert_eq!(
        checkpoint::decode(&original, config).unwrap().0.position,
        last
    );
    let other_config = checkpoint::decode(&original, config ^ 1).unwrap_err();
    assert!(
        matches!(other_config, Unusable::Config { .. }),
        "{other_config}"
    );
    let full = full_replay(&world, last).await;
    let everything = events_after(&world.store, Position::START).await;

    for how in [
        Damage::Missing,
        Damage::Truncated,
        Damage::FlippedByte,
        Damage::WrongVersion,
        Damage::Garbage,
    ] {
        let dir = TempDir::new("ckpt-damaged-copy");
        let mut bytes = original.clone();
        damage(&mut bytes, how);
        let config = model_config(&ReadModels::default());
        let why = checkpoint::decode(&bytes, config).unwrap_err();
        let expected = match how {
            Damage::Missing | Damage::Truncated | Damage::Garbage => {
                matches!(why, Unusable::Truncated { .. })
            }
            Damage::FlippedByte => matches!(why, Unusable::Checksum { .. }),
            Damage::WrongVersion => {
                matches!(why, Unusable::Version { found } if found == FORMAT_VERSION + 1)
            }
        };
        assert!(expected, "{how:?}: {why}");
        if !matches!(how, Damage::Missing) {
            std::fs::write(on_request(&dir.0).path("all"), &bytes).unwrap();
        }
        let projector =
            Projector::spawn_with(world.store.clone(), ReadModels::default, on_request(&dir.0));
        projector.wait_for(last, WAIT).await.unwrap();
        let progress = projector.progress();
        assert_eq!(progress.restored_from, None, "{how:?}");
        assert_eq!(progress.checkpoint, None, "{how:?}");
        assert_eq!(progress.events, everything, "{how:?}: replayed from 0");
        assert_eq!(projector.read(Clone::clone), full, "{how:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_of_another_log_or_configuration_is_not_resumed() {
    let mut world = World::new("ckpt-other");
    let dir = TempDir::new("ckpt-other-dir");
    let last = history(&mut world).await;
    take_checkpoint(&world, &dir.0, last).await;

    // Another log: one event more at the start shifts every position and id after it.
    let mut other = World::new("ckpt-other-log");
    other
        .append_raw("$settings", "SettingsChanged", "{}", "{}")
        .await;
    let other_last = history(&mut other).await;
    let projector =
        Projector::spawn_with(other.store.clone(), ReadModels::default, on_request(&dir.0));
    projector.wait_for(other_last, WAIT).await.unwrap();
    assert_eq!(projector.progress().restored_from, None);
    assert_eq!(
        projector.progress().events,
        events_after(&other.store, Position::START).await
    );
    assert_eq!(
        projector.read(Clone::clone),
        full_replay(&other, other_last).await
    );
    projector.stop().await;

    // The same log, a model configured otherwise (KPIs by county): not resumed either.
    let counties = || {
        ReadModels::new(KpisView::new(vec![County {
            name: "临川区".into(),
            seat: HOME,
        }]))
    };
    let projector = Projector::spawn_with(world.store.clone(), counties, on_request(&dir.0));
    projector.wait_for(last, WAIT).await.unwrap();
    assert_eq!(projector.progress().restored_from, None);
    assert_eq!(projector.read(|m| m.kpis.county("临川区").posted), 5);

    // The original log and configuration still resume from it.
    let projector =
        Projector::spawn_with(world.store.clone(), ReadModels::default, on_request(&dir.0));
    projector.wait_for(last, WAIT).await.unwrap();
    assert_eq!(projector.progress().restored_from, Some(last));
    assert_eq!(projector.progress().events, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_writes_a_fresh_checkpoint() {
    let mut world = World::new("ckpt-rebuild");
    let dir = TempDir::new("ckpt-rebuild-dir");
    let projector =
        Projector::spawn_with(world.store.clone(), ReadModels::default, on_request(&dir.0));
    let first = history(&mut world).await;
    projector.wait_for(first, WAIT).await.unwrap();
    assert_eq!(projector.progress().checkpoint, None);
    assert!(!on_request(&dir.0).path("all").exists());

    let last = world.post(order_id(30), customer(4), T0).await;
    projector.wait_for(last, WAIT).await.unwrap();
    assert_eq!(projector.rebuild().await.unwrap(), last);
    assert_eq!(projector.progress().checkpoint, Some(last));
    assert_eq!(projector.lag().await.unwrap().checkpoint, Some(last));
    let model = projector.read(Clone::clone);
    projector.stop().await;

    let resumed =
        Projector::spawn_with(world.store.clone(), ReadModels::default, on_request(&dir.0));
    resumed.wait_for(last, WAIT).await.unwrap();
    assert_eq!(resumed.progress().restored_from, Some(last));
    assert_eq!(resumed.read(Clone::clone), model);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_written_every_so_many_events() {
    let mut world = World::new("ckpt-count");
    let dir = TempDir::new("ckpt-count-dir");
    let config = CheckpointConfig {
        every_events: 5,
        ..on_request(&dir.0)
    };
    let projector = Projector::spawn_with(world.store.clone(), ReadModels::default, config);
    let last = history(&mut world).await;
    projector.wait_for(last, WAIT).await.unwrap();
    let at = projector
        .wait_for_checkpoint(Position(1), WAIT)
        .await
        .unwrap();
    assert!(at <= last);
    // Later counted checkpoints may still be under way; the file always holds a whole one.
    let bytes = std::fs::read(on_request(&dir.0).path("all")).unwrap();
    let (mark, _) = checkpoint::decode(&bytes, model_config(&ReadModels::default())).unwrap();
    assert!(at <= mark.position && mark.position <= last, "{mark:?}");
    // A requested checkpoint waits for the one in flight and then covers everything.
    assert_eq!(projector.checkpoint().await.unwrap(), Some(last));
    let bytes = std::fs::read(on_request(&dir.0).path("all")).unwrap();
    let (mark, _) = checkpoint::decode(&bytes, model_config(&ReadModels::default())).unwrap();
    assert_eq!(mark.position, last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_written_every_so_often_and_never_without_a_directory() {
    let mut world = World::new("ckpt-interval");
    let dir = TempDir::new("ckpt-interval-dir");
    let config = CheckpointConfig {
        every_interval: Some(std::time::Duration::from_millis(10)),
        ..on_request(&dir.0)
    };
    let projector = Projector::spawn_with(world.store.clone(), ReadModels::default, config);
    let plain = Projector::spawn(world.store.clone(), ReadModels::default);
    let last = history(&mut world).await;
    // The interval fires once events are waiting to be checkpointed; it catches up to `last`.
    assert!(projector.wait_for_checkpoint(last, WAIT).await.unwrap() >= last);
    assert!(on_request(&dir.0).path("all").exists());

    plain.wait_for(last, WAIT).await.unwrap();
    assert_eq!(plain.checkpoint().await.unwrap(), None);
    assert_eq!(plain.progress().checkpoint, None);
}
