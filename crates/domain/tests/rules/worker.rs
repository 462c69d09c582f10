//! Workers: registration, platform contracts with injury cover, and the credentials an order
//! decision is given (standing from credit, certificates from the registry, contract in force).

use daojia_domain::certificates::{self, CertificateEvent, CertificateKind, IdentityNumber};
use daojia_domain::credit::{CreditEvent, CreditState, SanctionCause};
use daojia_domain::order::{GeoPoint, WorkerCredentials};
use daojia_domain::worker::{
    self, ContractNumber, RegisterWorker, WorkerCommand, WorkerEvent, WorkerState,
};
use daojia_domain::{
    CertificateId, CompanyId, DomainError, Minutes, RegistryId, SkillKind, Standing, Subject,
    WorkerId,
};

use crate::framework::Case;
use crate::order_lifecycle::T0;

const W: WorkerId = WorkerId::from_u128(0xA1);
const CO: CompanyId = CompanyId::from_u128(0xCC);
const REG: RegistryId = RegistryId::from_u128(0x4E6);

fn identity() -> IdentityNumber {
    IdentityNumber::new("11010519491231002X").unwrap()
}

fn home() -> GeoPoint {
    GeoPoint::new(27.95, 116.36).unwrap()
}

fn skill() -> SkillKind {
    "disinfection".parse().unwrap()
}

fn number(n: &str) -> ContractNumber {
    ContractNumber::new(n).unwrap()
}

fn case() -> Case<WorkerState, WorkerCommand, WorkerEvent> {
    Case::new(
        WorkerState::default(),
        Box::new(worker::decide),
        worker::evolve,
    )
}

fn register() -> WorkerCommand {
    WorkerCommand::Register(Box::new(RegisterWorker {
        worker: W,
        company: CO,
        identity: identity(),
        skills: vec![skill()],
        home: home(),
        registry: REG,
    }))
}

fn registered() -> WorkerEvent {
    WorkerEvent::WorkerRegistered {
        worker: W,
        company: CO,
        identity: identity(),
        skills: vec![skill()],
        home: home(),
        registry: REG,
        at: T0,
    }
}

fn sign(n: &str, injury_cover: bool) -> WorkerCommand {
    WorkerCommand::SignContract {
        contract: number(n),
        injury_cover,
        valid_from: T0,
        valid_until: T0.plus(Minutes::days(365)),
    }
}

fn signed(n: &str) -> WorkerEvent {
    WorkerEvent::ContractSigned {
        contract: number(n),
        valid_from: T0,
        valid_until: T0.plus(Minutes::days(365)),
        at: T0,
    }
}

#[test]
fn a_worker_is_registered_with_company_identity_skills_home_and_registry() {
    case().when(register(), T0).then(vec![registered()]);
}

#[test]
fn registering_twice_is_refused() {
    case()
        .given(&[registered()])
        .when(register(), T0)
        .then_error(DomainError::WorkerAlreadyRegistered { worker: W });
}

#[test]
fn a_contract_with_injury_cover_is_signed() {
    case()
        .given(&[registered()])
        .when(sign("HT-2026-001", true), T0)
        .then(vec![signed("HT-2026-001")]);
}

#[test]
fn a_contract_without_injury_cover_is_refused() {
    case()
        .given(&[registered()])
        .when(sign("HT-2026-001", false), T0)
        .then_reason("CONTRACT_WITHOUT_INJURY_COVER");
}

#[test]
fn a_contract_for_an_unregistered_worker_is_refused() {
    case()
        .when(sign("HT-2026-001", true), T0)
        .then_error(DomainError::WorkerNotRegistered);
}

#[test]
fn the_same_contract_is_not_signed_twice() {
    case()
        .given(&[registered(), signed("HT-2026-001")])
        .when(sign("HT-2026-001", true), T0)
        .then_reason("CONTRACT_ALREADY_SIGNED");
}

#[test]
fn a_contract_already_over_or_ending_before_it_starts_is_refused() {
    let over = WorkerCommand::SignContract {
        contract: number("HT-1"),
        injury_cover: true,
        valid_from: T0.minus(Minutes::days(30)),
        valid_until: T0.minus(Minutes::days(1)),
    };
    case()
        .given(&[registered()])
        .when(over, T0)
        .then_reason("INVALID_VALIDITY");
    let backwards = WorkerCommand::SignContract {
        contract: number("HT-2"),
        injury_cover: true,
        valid_from: T0.plus(Minutes::days(30)),
        valid_until: T0.plus(Minutes::days(10)),
    };
    case()
        .given(&[registered()])
        .when(backwards, T0)
        .then_reason("INVALID_VALIDITY");
}

#[test]
fn contract_numbers_are_validated() {
    assert_eq!(
        ContractNumber::new("HT-2026-001").unwrap().as_str(),
        "HT-2026-001"
    );
    for bad in ["", "has space", "合同", &"x".repeat(65)] {
        assert_eq!(
            ContractNumber::new(bad).unwrap_err().reason(),
            "INVALID_CONTRACT_NUMBER"
        );
    }
}

fn certificate(id: u128, kind: CertificateKind) -> CertificateEvent {
    CertificateEvent::CertificateIssued {
        certificate_id: CertificateId::from_u128(id),
        worker: W,
        identity: identity(),
        company: CO,
        kind,
        issued_at: T0,
        valid_until: T0.plus(Minutes::days(365)),
    }
}

fn registry(events: &[CertificateEvent]) -> certificates::CertificateRegistry {
    events.iter().fold(Default::default(), certificates::evolve)
}

fn credit(events: &[CreditEvent]) -> CreditState {
    events.iter().fold(
        CreditState::new(Subject::Worker(W)),
        daojia_domain::credit::evolve,
    )
}

#[test]
fn credentials_combine_profile_credit_and_registry() {
    let state = worker::fold(&[registered(), signed("HT-1")]);
    let certs = registry(&[
        certificate(1, CertificateKind::HomeVisit),
        certificate(2, CertificateKind::Skill(skill())),
    ]);
    let creds = worker::credentials(&state, &credit(&[]), &certs, T0.plus(Minutes(60))).unwrap();
    assert_eq!(
        creds,
        WorkerCredentials {
            worker: W,
            standing: Standing::Good,
            home_visit_certificate_valid: true,
            skills: vec![skill()],
            contract_signed: true,
        }
    );
}

#[test]
fn credentials_show_no_contract_before_signing_and_after_it_ends() {
    let certs = registry(&[certificate(1, CertificateKind::HomeVisit)]);
    let unsigned = worker::fold(&[registered()]);
    let creds = worker::credentials(&unsigned, &credit(&[]), &certs, T0).unwrap();
    assert!(!creds.contract_signed);
    let signed = worker::fold(&[registered(), signed("HT-1")]);
    let later = T0.plus(Minutes::days(366));
    let creds = worker::credentials(&signed, &credit(&[]), &certs, later).unwrap();
    assert!(!creds.contract_signed);
    assert!(!creds.home_visit_certificate_valid, "expired with the year");
}

#[test]
fn credentials_carry_the_credit_standing() {
    let state = worker::fold(&[registered(), signed("HT-1")]);
    let retraining = CreditEvent::RetrainingRequired {
        subject: Subject::Worker(W),
        cause: SanctionCause::Ops {
            reason: "tools not disinfected".into(),
        },
        at: T0,
    };
    let creds = worker::credentials(&state, &credit(&[retraining]), &registry(&[]), T0).unwrap();
    assert_eq!(creds.standing, Standing::InRetraining);
    assert!(!creds.home_visit_certificate_valid);
}

#[test]
fn credentials_of_an_unregistered_worker_are_refused() {
    assert_eq!(
        worker::credentials(&WorkerState::default(), &credit(&[]), &registry(&[]), T0),
        Err(DomainError::WorkerNotRegistered)
    );
}

#[test]
fn worker_events_round_trip_through_the_serialization_boundary() {
    for event in [registered(), signed("HT-1")] {
        let encoded = daojia_domain::events::encode(&event).unwrap();
        assert_eq!(encoded.schema_version, 1);
        assert_eq!(encoded.event_type, event.event_type());
        let back: WorkerEvent = daojia_domain::events::decode(&encoded).unwrap();
        assert_eq!(back, event);
    }
}

#[test]
fn profiles_live_in_their_own_stream_beside_the_credit_stream() {
    assert_eq!(
        worker::profile_stream(W),
        "workerprofile-00000000-0000-0000-0000-0000000000a1"
    );
    assert_ne!(worker::profile_stream(W), Subject::Worker(W).stream_name());
}
