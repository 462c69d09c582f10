//! The worker aggregate (stream `workerprofile-<uuid>`, see [`profile_stream`]): registration
//! with a company, an identity number, declared skills, a home location and the certificate
//! registry that certifies the worker, and the platform contract with injury cover (规范合同).
//! [`credentials`] assembles the [`WorkerCredentials`] an order decision needs from the profile,
//! the worker's credit state and the registry.
//!
//! Where a worker's facts live, and how the server finds them:
//! - profile and contracts: `workerprofile-<uuid>` (this module's events). The worker's
//!   `worker-<uuid>` stream already holds their credit events (`credit::Subject::stream_name`),
//!   so the profile gets its own category rather than mixing two event families in one stream;
//! - credit standing: `worker-<uuid>` (`credit::evolve`);
//! - certificates: the stream `certificates-<uuid>` of the registry named in
//!   [`WorkerEvent::WorkerRegistered`] (`RegistryId::stream_name`); certificates are keyed by
//!   worker id inside the registry (`CertificateRegistry::credentials`).

use serde::{Deserialize, Serialize};

use crate::catalog::SkillKind;
use crate::certificates::{CertificateRegistry, IdentityNumber};
use crate::credit::CreditState;
use crate::error::DomainError;
use crate::ids::{CompanyId, RegistryId, WorkerId};
use crate::order::{GeoPoint, WorkerCredentials};
use crate::time::Timestamp;

/// The stream category of worker profiles.
pub const PROFILE_CATEGORY: &str = "workerprofile";

/// The stream of `worker`'s profile: `workerprofile-<uuid>`.
pub fn profile_stream(worker: WorkerId) -> String {
    format!("{PROFILE_CATEGORY}-{}", worker.uuid().hyphenated())
}

/// A platform contract's number, chosen by ops (the number printed on the paper contract):
/// 1..=64 characters of ASCII letters, digits and `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContractNumber(String);

impl ContractNumber {
    /// Validates and wraps.
    pub fn new(value: &str) -> Result<Self, DomainError> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(DomainError::InvalidContractNumber {
                value: value.chars().take(64).collect(),
            })
        }
    }

    /// The number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ContractNumber {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<ContractNumber> for String {
    fn from(number: ContractNumber) -> Self {
        number.0
    }
}

/// Registering a worker.
#[derive(Clone, Debug, PartialEq)]
pub struct RegisterWorker {
    /// The worker (fresh id chosen by the caller).
    pub worker: WorkerId,
    /// Employing company.
    pub company: CompanyId,
    /// Identity number.
    pub identity: IdentityNumber,
    /// Declared skills (the matching profile; eligibility counts certified skills only).
    pub skills: Vec<SkillKind>,
    /// Home location.
    pub home: GeoPoint,
    /// The registry that issues the worker's certificates.
    pub registry: RegistryId,
}

/// Commands on a worker.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkerCommand {
    /// Register the worker.
    Register(Box<RegisterWorker>),
    /// Record a signed platform contract.
    SignContract {
        /// Contract number.
        contract: ContractNumber,
        /// The contract includes work-injury cover (a contract without it is refused).
        injury_cover: bool,
        /// Start of validity.
        valid_from: Timestamp,
        /// End of validity.
        valid_until: Timestamp,
    },
}

/// Events of a worker profile stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum WorkerEvent {
    /// The worker was registered.
    WorkerRegistered {
        /// Worker.
        worker: WorkerId,
        /// Employing company.
        company: CompanyId,
        /// Identity number.
        identity: IdentityNumber,
        /// Declared skills.
        skills: Vec<SkillKind>,
        /// Home location.
        home: GeoPoint,
        /// Certificate registry.
        registry: RegistryId,
        /// When.
        at: Timestamp,
    },
    /// A platform contract with injury cover was signed.
    ContractSigned {
        /// Contract number.
        contract: ContractNumber,
        /// Start of validity.
        valid_from: Timestamp,
        /// End of validity.
        valid_until: Timestamp,
        /// When.
        at: Timestamp,
    },
}

impl WorkerEvent {
    /// The event type name stored in the event log.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::WorkerRegistered { .. } => "WorkerRegistered",
            Self::ContractSigned { .. } => "ContractSigned",
        }
    }
}

/// A signed contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contract {
    /// Number.
    pub number: ContractNumber,
    /// Start of validity.
    pub valid_from: Timestamp,
    /// End of validity.
    pub valid_until: Timestamp,
}

impl Contract {
    /// In force at `now`.
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.valid_from <= now && now < self.valid_until
    }
}

/// A registered worker.
#[derive(Clone, Debug, PartialEq)]
pub struct Worker {
    /// Id.
    pub id: WorkerId,
    /// Employing company.
    pub company: CompanyId,
    /// Identity number.
    pub identity: IdentityNumber,
    /// Declared skills.
    pub skills: Vec<SkillKind>,
    /// Home location.
    pub home: GeoPoint,
    /// Certificate registry.
    pub registry: RegistryId,
    /// Contracts in signing order.
    pub contracts: Vec<Contract>,
}

impl Worker {
    /// Has a contract in force at `now`.
    pub fn contracted(&self, now: Timestamp) -> bool {
        self.contracts.iter().any(|c| c.in_force(now))
    }
}

/// The worker aggregate state: nothing until `WorkerRegistered`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct WorkerState {
    /// The worker, once registered.
    pub worker: Option<Worker>,
}

/// Decides a worker command at `now`.
pub fn decide(
    state: &WorkerState,
    command: WorkerCommand,
    now: Timestamp,
) -> Result<Vec<WorkerEvent>, DomainError> {
    match command {
        WorkerCommand::Register(r) => {
            if let Some(existing) = &state.worker {
                return Err(DomainError::WorkerAlreadyRegistered {
                    worker: existing.id,
                });
            }
            let RegisterWorker {
                worker,
                company,
                identity,
                skills,
                home,
                registry,
            } = *r;
            Ok(vec![WorkerEvent::WorkerRegistered {
                worker,
                company,
                identity,
                skills,
                home,
                registry,
                at: now,
            }])
        }
        WorkerCommand::SignContract {
            contract,
            injury_cover,
            valid_from,
            valid_until,
        } => {
            let Some(worker) = &state.worker else {
                return Err(DomainError::WorkerNotRegistered);
            };
            if valid_until <= valid_from || valid_until <= now {
                return Err(DomainError::InvalidValidity { valid_until });
            }
            if !injury_cover {
                return Err(DomainError::ContractWithoutInjuryCover { contract });
            }
            if worker.contracts.iter().any(|c| c.number == contract) {
                return Err(DomainError::ContractAlreadySigned { contract });
            }
            Ok(vec![WorkerEvent::ContractSigned {
                contract,
                valid_from,
                valid_until,
                at: now,
            }])
        }
    }
}

/// Applies a stored event; never validates. Events before `WorkerRegistered` leave the state
/// unchanged.
pub fn evolve(mut state: WorkerState, event: &WorkerEvent) -> WorkerState {
    match event {
        WorkerEvent::WorkerRegistered {
            worker,
            company,
            identity,
            skills,
            home,
            registry,
            ..
        } => {
            state.worker = Some(Worker {
                id: *worker,
                company: *company,
                identity: identity.clone(),
                skills: skills.clone(),
                home: *home,
                registry: *registry,
                contracts: Vec::new(),
            });
        }
        WorkerEvent::ContractSigned {
            contract,
            valid_from,
            valid_until,
            ..
        } => {
            if let Some(worker) = state.worker.as_mut() {
                worker.contracts.push(Contract {
                    number: contract.clone(),
                    valid_from: *valid_from,
                    valid_until: *valid_until,
                });
            }
        }
    }
    state
}

/// Folds a stream of events into the state.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a WorkerEvent>) -> WorkerState {
    events.into_iter().fold(WorkerState::default(), evolve)
}

/// What an order decision knows about the worker at `now`: standing from `credit`, valid
/// certificates from `registry` (the worker's registry, see the module docs), and whether a
/// contract is in force. Refuses an unregistered worker.
pub fn credentials(
    state: &WorkerState,
    credit: &CreditState,
    registry: &CertificateRegistry,
    now: Timestamp,
) -> Result<WorkerCredentials, DomainError> {
    let Some(worker) = &state.worker else {
        return Err(DomainError::WorkerNotRegistered);
    };
    let (home_visit_certificate_valid, skills) = registry.credentials(worker.id, now);
    Ok(WorkerCredentials {
        worker: worker.id,
        standing: credit.standing,
        home_visit_certificate_valid,
        skills,
        contract_signed: worker.contracted(now),
    })
}
