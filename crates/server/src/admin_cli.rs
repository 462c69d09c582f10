//! `daojia admin ...`: the ops console on the command line. One subcommand per
//! `daojia.v1.Admin` RPC (times as RFC 3339, `2027-01-15T08:00:00Z`; a rule set from a JSON
//! file) and the main ops queries of `daojia.v1.Queries` (open follow-ups, complaints and
//! disputes, the red and black lists, a worker's credit history, the KPI table), sent to a
//! running server with a bearer token. Output is a readable table, or JSON with `--json`.
//!
//! A refused call becomes [`CliError::Refused`] with the gRPC code, message, ErrorInfo reason
//! code and field violations; the binary prints it and exits non-zero. [`run`] writes to any
//! [`Write`], so tests capture the output in a buffer.

use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};
use tonic_types::StatusExt;

use crate::pb;
use crate::pb::admin_client::AdminClient;
use crate::pb::meta_client::MetaClient;
use crate::pb::queries_client::QueriesClient;

/// The environment variable holding the token when `--token` is not given.
pub const TOKEN_ENV: &str = "DAOJIA_TOKEN";

/// `daojia admin` options, as given.
#[derive(Clone, Debug, Args)]
pub struct AdminArgs {
    /// The server's address.
    #[arg(long, global = true, default_value = "http://127.0.0.1:2113")]
    pub server: String,
    /// Bearer token of an `ops` or `admin` role (default: the DAOJIA_TOKEN environment variable;
    /// none is needed against a server run with `--insecure`).
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// PEM file of the CA that signed the server's certificate (for https).
    #[arg(long, global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: AdminSubcommand,
}

/// Whose credit, on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SubjectKindArg {
    /// A worker.
    Worker,
    /// A company.
    Company,
    /// A customer.
    Customer,
}

impl SubjectKindArg {
    fn pb(self) -> pb::CreditSubjectKind {
        match self {
            SubjectKindArg::Worker => pb::CreditSubjectKind::Worker,
            SubjectKindArg::Company => pb::CreditSubjectKind::Company,
            SubjectKindArg::Customer => pb::CreditSubjectKind::Customer,
        }
    }
}

/// Which list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListArg {
    /// The red list (红榜).
    Red,
    /// The black list (黑榜).
    Black,
}

/// How KPIs are broken down, on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BreakdownArg {
    /// One row, `total`.
    Total,
    /// By China-time day of posting (`YYYY-MM-DD`).
    Day,
    /// By service category.
    Category,
    /// By county (nearest seat).
    County,
    /// By company of the workers involved.
    Company,
}

impl BreakdownArg {
    fn pb(self) -> pb::KpiBreakdown {
        match self {
            BreakdownArg::Total => pb::KpiBreakdown::Total,
            BreakdownArg::Day => pb::KpiBreakdown::Day,
            BreakdownArg::Category => pb::KpiBreakdown::Category,
            BreakdownArg::County => pb::KpiBreakdown::County,
            BreakdownArg::Company => pb::KpiBreakdown::Company,
        }
    }
}

/// How a complaint was decided, on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DecisionArg {
    /// Substantiated (needs --severity).
    Upheld,
    /// Not substantiated.
    Dismissed,
}

/// An upheld complaint's severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    /// Minor.
    Minor,
    /// Major.
    Major,
    /// Severe (abuse, theft, injury).
    Severe,
}

/// Who a dispute found at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FaultArg {
    /// Nobody.
    Nobody,
    /// The order's customer (--at-fault is their id).
    Customer,
    /// A worker on the order (--at-fault is their id).
    Worker,
}

/// What a certificate certifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CertificateKindArg {
    /// The home-visit certificate.
    HomeVisit,
    /// A skill certificate (needs --skill).
    Skill,
}

/// An appeal's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AppealDecisionArg {
    /// The appealed adjustment is reversed.
    Upheld,
    /// The appeal is rejected.
    Rejected,
}

/// An RFC 3339 time (`2027-01-15T08:00:00Z`).
fn rfc3339(value: &str) -> Result<pb::Timestamp, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?} is not an RFC 3339 time like 2027-01-15T08:00:00Z"))
}

/// The options every command shares.
#[derive(Clone, Debug, Args)]
pub struct CommandOptions {
    /// Why (required, recorded with the events).
    #[arg(long)]
    pub reason: String,
    /// Idempotency key (UUID); reuse it to retry the same command. Default: a fresh one.
    #[arg(long)]
    pub command_id: Option<String>,
}

/// The options every query shares.
#[derive(Clone, Debug, Args)]
pub struct QueryOptions {
    /// Answer only once the read models reached this position (a command's commit position).
    #[arg(long, default_value_t = 0)]
    pub min_position: u64,
    /// At most this many rows (the server's default when 0).
    #[arg(long, default_value_t = 0)]
    pub limit: u32,
    /// The previous answer's next page token.
    #[arg(long, default_value = "")]
    pub page_token: String,
}

/// `daojia admin` subcommands.
#[derive(Clone, Debug, Subcommand)]
pub enum AdminSubcommand {
    /// Suspend a worker.
    SuspendWorker {
        /// The worker's id.
        #[arg(long)]
        worker: String,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Reinstate a suspended worker.
    ReinstateWorker {
        /// The worker's id.
        #[arg(long)]
        worker: String,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Black-list a worker, company or customer.
    BlackList {
        /// Kind of subject.
        #[arg(long, value_enum)]
        kind: SubjectKindArg,
        /// The subject's id.
        #[arg(long)]
        id: String,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Adjust a subject's credit score by hand.
    AdjustCredit {
        /// Kind of subject.
        #[arg(long, value_enum)]
        kind: SubjectKindArg,
        /// The subject's id.
        #[arg(long)]
        id: String,
        /// Points to add, negative to deduct.
        #[arg(long, allow_hyphen_values = true)]
        points: i32,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Record that a worker in retraining completed it.
    RecordTraining {
        /// The worker's id.
        #[arg(long)]
        worker: String,
        /// The course completed.
        #[arg(long)]
        course: String,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Close an open follow-up task with a note on its outcome.
    CloseFollowUp {
        /// The follow-up task's id.
        #[arg(long)]
        follow_up: String,
        /// The outcome.
        #[arg(long)]
        note: String,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Decide an open complaint on an order.
    ResolveComplaint {
        /// The order's id.
        #[arg(long)]
        order: String,
        /// The complaint's id.
        #[arg(long)]
        complaint: String,
        /// Upheld or dismissed.
        #[arg(long, value_enum)]
        decision: DecisionArg,
        /// The severity of an upheld complaint.
        #[arg(long, value_enum)]
        severity: Option<SeverityArg>,
        /// Refund to the customer in fen, for an upheld complaint.
        #[arg(long, default_value_t = 0)]
        refund_fen: i64,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Resolve an open dispute on an order.
    ResolveDispute {
        /// The order's id.
        #[arg(long)]
        order: String,
        /// The dispute's id.
        #[arg(long)]
        dispute: String,
        /// Who was at fault.
        #[arg(long, value_enum)]
        fault: FaultArg,
        /// The id of the customer or worker at fault.
        #[arg(long, default_value = "")]
        at_fault: String,
        /// Refund to the customer in fen.
        #[arg(long, default_value_t = 0)]
        refund_fen: i64,
        /// Compensation beyond the refund in fen.
        #[arg(long, default_value_t = 0)]
        compensation_fen: i64,
        /// The mediator's note.
        #[arg(long)]
        note: String,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Cancel an order before service, on the platform's behalf (no fee for the customer).
    CancelOrder {
        /// The order's id.
        #[arg(long)]
        order: String,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Publish a credit rule set (an `admin` token): a JSON file in the domain's RuleSet shape.
    PublishCreditRules {
        /// The rule set's JSON file.
        #[arg(long)]
        rules: PathBuf,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Issue a certificate to a registered worker.
    IssueCertificate {
        /// The worker's id.
        #[arg(long)]
        worker: String,
        /// The new certificate's id (a UUID you choose; the number on the card).
        #[arg(long)]
        certificate: String,
        /// What it certifies.
        #[arg(long, value_enum)]
        kind: CertificateKindArg,
        /// The skill, for a skill certificate: a catalogue skill name (`disinfection`,
        /// `elder_carer`, …; `Catalog.ListServices` lists them).
        #[arg(long, default_value = "")]
        skill: String,
        /// The identity was checked in person.
        #[arg(long)]
        identity_verified: bool,
        /// When the health check was done (RFC 3339).
        #[arg(long, value_parser = rfc3339)]
        health_check_at: pb::Timestamp,
        /// Pre-job training was completed.
        #[arg(long)]
        training_completed: bool,
        /// The exam was passed.
        #[arg(long)]
        exam_passed: bool,
        /// End of validity (RFC 3339).
        #[arg(long, value_parser = rfc3339)]
        valid_until: pb::Timestamp,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Revoke a worker's certificate for good.
    RevokeCertificate {
        /// The worker's id.
        #[arg(long)]
        worker: String,
        /// The certificate's id.
        #[arg(long)]
        certificate: String,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Register a worker with their employing company.
    RegisterWorker {
        /// The new worker's id (a UUID you choose).
        #[arg(long)]
        worker: String,
        /// The employing company's id.
        #[arg(long)]
        company: String,
        /// The resident identity number.
        #[arg(long)]
        identity: String,
        /// A declared skill (repeat for several).
        #[arg(long = "skill")]
        skills: Vec<String>,
        /// Home latitude (WGS-84 degrees).
        #[arg(long, allow_hyphen_values = true)]
        lat: f64,
        /// Home longitude (WGS-84 degrees).
        #[arg(long, allow_hyphen_values = true)]
        lon: f64,
        /// The certificate registry's id.
        #[arg(long)]
        registry: String,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Record a registered worker's signed platform contract.
    SignContract {
        /// The worker's id.
        #[arg(long)]
        worker: String,
        /// The number printed on the contract.
        #[arg(long)]
        contract: String,
        /// The contract includes work-injury cover (required by the rules).
        #[arg(long)]
        injury_cover: bool,
        /// Start of validity (RFC 3339).
        #[arg(long, value_parser = rfc3339)]
        valid_from: pb::Timestamp,
        /// End of validity (RFC 3339).
        #[arg(long, value_parser = rfc3339)]
        valid_until: pb::Timestamp,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Decide a subject's appeal against a credit adjustment.
    DecideAppeal {
        /// Kind of subject.
        #[arg(long, value_enum)]
        kind: SubjectKindArg,
        /// The subject's id.
        #[arg(long)]
        id: String,
        /// The appeal's id.
        #[arg(long)]
        appeal: String,
        /// Upheld (the adjustment is reversed) or rejected.
        #[arg(long, value_enum)]
        decision: AppealDecisionArg,
        /// The decision's note.
        #[arg(long)]
        note: String,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Repair a subject's credit after the clean period.
    RepairCredit {
        /// Kind of subject.
        #[arg(long, value_enum)]
        kind: SubjectKindArg,
        /// The subject's id.
        #[arg(long)]
        id: String,
        #[command(flatten)]
        options: CommandOptions,
    },
    /// Rebuild the read models from position 0.
    RebuildProjection {
        /// Why (required, written to the server's audit log).
        #[arg(long)]
        reason: String,
    },
    /// Open follow-up tasks, soonest due first.
    FollowUps {
        #[command(flatten)]
        query: QueryOptions,
    },
    /// Open complaints, oldest first.
    Complaints {
        #[command(flatten)]
        query: QueryOptions,
    },
    /// Open disputes, oldest first.
    Disputes {
        #[command(flatten)]
        query: QueryOptions,
    },
    /// The red or the black list.
    List {
        /// Which list.
        #[arg(value_enum)]
        list: ListArg,
        /// Only this kind of subject.
        #[arg(long, value_enum)]
        kind: Option<SubjectKindArg>,
        #[command(flatten)]
        query: QueryOptions,
    },
    /// The server: version, head position, read-model and reactor progress, and your role.
    Status,
    /// Move a simulated clock forward (`serve --simulated-clock`; an `admin` token).
    SetClock {
        /// The new reading (RFC 3339).
        #[arg(long, value_parser = rfc3339)]
        to: pb::Timestamp,
    },
    /// Wait until the reactor and the dispatcher have caught up with the log and the clock.
    WaitSettled {
        /// The longest to wait, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u32,
    },
    /// The KPI table (`Queries.GetKpis`): counts and rates, in total or broken down.
    Kpis {
        /// How to break the KPIs down.
        #[arg(long, value_enum, default_value_t = BreakdownArg::Total)]
        breakdown: BreakdownArg,
        #[command(flatten)]
        query: QueryOptions,
    },
    /// A worker's credit: score, standing and history.
    Credit {
        /// The worker's id.
        #[arg(long)]
        worker: String,
        #[command(flatten)]
        query: QueryOptions,
    },
}

/// Why `daojia admin` failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The options were not usable.
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached.
    #[error("cannot connect to {server}: {source}")]
    Connect {
        /// The address.
        server: String,
        /// Why.
        source: tonic::transport::Error,
    },
    /// The server refused the call.
    #[error("refused: {code:?}: {message}{}{}", reason_suffix(.reason), violations_suffix(.violations))]
    Refused {
        /// The gRPC code.
        code: tonic::Code,
        /// The status message.
        message: String,
        /// The ErrorInfo reason code, if any.
        reason: Option<String>,
        /// Field violations as `field: description`.
        violations: Vec<String>,
    },
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

fn reason_suffix(reason: &Option<String>) -> String {
    reason
        .as_ref()
        .map(|r| format!(" (reason {r})"))
        .unwrap_or_default()
}

fn violations_suffix(violations: &[String]) -> String {
    violations.iter().map(|v| format!("\n  {v}")).collect()
}

impl From<Status> for CliError {
    fn from(status: Status) -> Self {
        CliError::Refused {
            code: status.code(),
            message: status.message().to_owned(),
            reason: status.get_details_error_info().map(|i| i.reason),
            violations: status
                .get_details_bad_request()
                .map(|b| {
                    b.field_violations
                        .into_iter()
                        .map(|v| format!("{}: {}", v.field, v.description))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Runs `args` against the server, writing the answer to `out`; `env_token` is the value of
/// [`TOKEN_ENV`], used when `--token` is absent.
pub async fn run(
    args: AdminArgs,
    env_token: Option<String>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    // Without a token the calls go out unauthenticated: fine against `serve --insecure`, and
    // any other server answers UNAUTHENTICATED with its reason.
    let token = args.token.clone().or(env_token);
    let channel = connect(&args).await?;
    let client = Client { channel, token };
    let answer = client.call(args.command).await?;
    if args.json {
        writeln!(out, "{}", answer.json)?;
    } else {
        write_table(out, &answer.columns, &answer.rows)?;
        for line in answer.footer {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

async fn connect(args: &AdminArgs) -> Result<Channel, CliError> {
    let connect_error = |source| CliError::Connect {
        server: args.server.clone(),
        source,
    };
    let mut endpoint = Endpoint::from_shared(args.server.clone())
        .map_err(|e| CliError::Usage(format!("invalid --server {}: {e}", args.server)))?;
    if args.server.starts_with("https://") {
        let Some(path) = &args.ca_cert else {
            return Err(CliError::Usage(
                "https needs --ca-cert with the CA that signed the server's certificate".into(),
            ));
        };
        let pem = std::fs::read(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
            .map_err(connect_error)?;
    }
    endpoint.connect().await.map_err(connect_error)
}

/// A command's or query's answer in both forms.
struct Answer {
    columns: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    footer: Vec<String>,
    json: Value,
}

struct Client {
    channel: Channel,
    token: Option<String>,
}

impl Client {
    fn request<T>(&self, message: T) -> Result<Request<T>, CliError> {
        let mut request = Request::new(message);
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}").parse().map_err(|_| {
                CliError::Usage("the token has characters a header cannot hold".into())
            })?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }

    async fn call(&self, command: AdminSubcommand) -> Result<Answer, CliError> {
        let mut admin = AdminClient::new(self.channel.clone());
        let mut queries = QueriesClient::new(self.channel.clone());
        let reply = match command {
            AdminSubcommand::SuspendWorker { worker, options } => {
                let r = pb::SuspendWorkerRequest {
                    command_id: command_id(&options),
                    worker_id: worker,
                    reason: options.reason,
                };
                admin.suspend_worker(self.request(r)?).await?
            }
            AdminSubcommand::ReinstateWorker { worker, options } => {
                let r = pb::ReinstateWorkerRequest {
                    command_id: command_id(&options),
                    worker_id: worker,
                    reason: options.reason,
                };
                admin.reinstate_worker(self.request(r)?).await?
            }
            AdminSubcommand::BlackList { kind, id, options } => {
                let r = pb::BlackListRequest {
                    command_id: command_id(&options),
                    subject: Some(subject(kind, id)),
                    reason: options.reason,
                };
                admin.black_list(self.request(r)?).await?
            }
            AdminSubcommand::AdjustCredit {
                kind,
                id,
                points,
                options,
            } => {
                let r = pb::AdjustCreditRequest {
                    command_id: command_id(&options),
                    subject: Some(subject(kind, id)),
                    points,
                    reason: options.reason,
                };
                admin.adjust_credit(self.request(r)?).await?
            }
            AdminSubcommand::RecordTraining {
                worker,
                course,
                options,
            } => {
                let r = pb::RecordTrainingCompletedRequest {
                    command_id: command_id(&options),
                    worker_id: worker,
                    course,
                    reason: options.reason,
                };
                admin.record_training_completed(self.request(r)?).await?
            }
            AdminSubcommand::CloseFollowUp {
                follow_up,
                note,
                options,
            } => {
                let r = pb::CloseFollowUpRequest {
                    command_id: command_id(&options),
                    follow_up_id: follow_up,
                    note,
                    reason: options.reason,
                };
                admin.close_follow_up(self.request(r)?).await?
            }
            AdminSubcommand::ResolveComplaint {
                order,
                complaint,
                decision,
                severity,
                refund_fen,
                options,
            } => {
                let r = pb::ResolveComplaintRequest {
                    command_id: command_id(&options),
                    order_id: order,
                    complaint_id: complaint,
                    decision: match decision {
                        DecisionArg::Upheld => pb::ComplaintDecision::Upheld,
                        DecisionArg::Dismissed => pb::ComplaintDecision::Dismissed,
                    } as i32,
                    severity: severity.map_or(pb::ComplaintSeverity::Unspecified, |s| match s {
                        SeverityArg::Minor => pb::ComplaintSeverity::Minor,
                        SeverityArg::Major => pb::ComplaintSeverity::Major,
                        SeverityArg::Severe => pb::ComplaintSeverity::Severe,
                    }) as i32,
                    refund_fen,
                    reason: options.reason,
                };
                admin.resolve_complaint(self.request(r)?).await?
            }
            AdminSubcommand::ResolveDispute {
                order,
                dispute,
                fault,
                at_fault,
                refund_fen,
                compensation_fen,
                note,
                options,
            } => {
                let r = pb::ResolveDisputeRequest {
                    command_id: command_id(&options),
                    order_id: order,
                    dispute_id: dispute,
                    fault: match fault {
                        FaultArg::Nobody => pb::DisputeFault::Nobody,
                        FaultArg::Customer => pb::DisputeFault::Customer,
                        FaultArg::Worker => pb::DisputeFault::Worker,
                    } as i32,
                    at_fault_id: at_fault,
                    refund_fen,
                    compensation_fen,
                    note,
                    reason: options.reason,
                };
                admin.resolve_dispute(self.request(r)?).await?
            }
            AdminSubcommand::CancelOrder { order, options } => {
                let r = pb::AdminCancelOrderRequest {
                    command_id: command_id(&options),
                    order_id: order,
                    reason: options.reason,
                };
                admin.cancel_order(self.request(r)?).await?
            }
            AdminSubcommand::PublishCreditRules { rules, options } => {
                let rules_json = std::fs::read_to_string(&rules).map_err(|e| {
                    CliError::Usage(format!("cannot read {}: {e}", rules.display()))
                })?;
                let r = pb::PublishCreditRulesRequest {
                    command_id: command_id(&options),
                    rules_json,
                    reason: options.reason,
                };
                admin.publish_credit_rules(self.request(r)?).await?
            }
            AdminSubcommand::IssueCertificate {
                worker,
                certificate,
                kind,
                skill,
                identity_verified,
                health_check_at,
                training_completed,
                exam_passed,
                valid_until,
                options,
            } => {
                let r = pb::IssueCertificateRequest {
                    command_id: command_id(&options),
                    worker_id: worker,
                    certificate_id: certificate,
                    kind: match kind {
                        CertificateKindArg::HomeVisit => pb::CertificateKind::HomeVisit,
                        CertificateKindArg::Skill => pb::CertificateKind::Skill,
                    } as i32,
                    skill,
                    identity_verified,
                    health_check_at: Some(health_check_at),
                    training_completed,
                    exam_passed,
                    valid_until: Some(valid_until),
                    reason: options.reason,
                };
                admin.issue_certificate(self.request(r)?).await?
            }
            AdminSubcommand::RevokeCertificate {
                worker,
                certificate,
                options,
            } => {
                let r = pb::RevokeCertificateRequest {
                    command_id: command_id(&options),
                    worker_id: worker,
                    certificate_id: certificate,
                    reason: options.reason,
                };
                admin.revoke_certificate(self.request(r)?).await?
            }
            AdminSubcommand::RegisterWorker {
                worker,
                company,
                identity,
                skills,
                lat,
                lon,
                registry,
                options,
            } => {
                let r = pb::RegisterWorkerRequest {
                    command_id: command_id(&options),
                    worker_id: worker,
                    company_id: company,
                    identity_number: identity,
                    skills,
                    home: Some(pb::LatLon { lat, lon }),
                    registry_id: registry,
                    reason: options.reason,
                };
                admin.register_worker(self.request(r)?).await?
            }
            AdminSubcommand::SignContract {
                worker,
                contract,
                injury_cover,
                valid_from,
                valid_until,
                options,
            } => {
                let r = pb::SignContractRequest {
                    command_id: command_id(&options),
                    worker_id: worker,
                    contract_number: contract,
                    injury_cover,
                    valid_from: Some(valid_from),
                    valid_until: Some(valid_until),
                    reason: options.reason,
                };
                admin.sign_contract(self.request(r)?).await?
            }
            AdminSubcommand::DecideAppeal {
                kind,
                id,
                appeal,
                decision,
                note,
                options,
            } => {
                let r = pb::DecideAppealRequest {
                    command_id: command_id(&options),
                    subject: Some(subject(kind, id)),
                    appeal_id: appeal,
                    upheld: decision == AppealDecisionArg::Upheld,
                    note,
                    reason: options.reason,
                };
                admin.decide_appeal(self.request(r)?).await?
            }
            AdminSubcommand::RepairCredit { kind, id, options } => {
                let r = pb::RepairCreditRequest {
                    command_id: command_id(&options),
                    subject: Some(subject(kind, id)),
                    reason: options.reason,
                };
                admin.repair_credit(self.request(r)?).await?
            }
            AdminSubcommand::RebuildProjection { reason } => {
                let r = admin
                    .rebuild_projection(self.request(pb::RebuildProjectionRequest { reason })?)
                    .await?
                    .into_inner();
                return Ok(rebuilt(r));
            }
            AdminSubcommand::FollowUps { query } => {
                let r = queries
                    .list_open_follow_ups(self.request(list_open(&query))?)
                    .await?;
                return Ok(follow_ups(r.into_inner()));
            }
            AdminSubcommand::Complaints { query } => {
                let r = queries
                    .list_open_complaints(self.request(list_open(&query))?)
                    .await?;
                return Ok(complaints(r.into_inner()));
            }
            AdminSubcommand::Disputes { query } => {
                let r = queries
                    .list_open_disputes(self.request(list_open(&query))?)
                    .await?;
                return Ok(disputes(r.into_inner()));
            }
            AdminSubcommand::List { list, kind, query } => {
                let r = pb::ListRedBlackRequest {
                    list: match list {
                        ListArg::Red => pb::RedBlackList::Red,
                        ListArg::Black => pb::RedBlackList::Black,
                    } as i32,
                    kind: kind.map_or(pb::CreditSubjectKind::Unspecified, SubjectKindArg::pb)
                        as i32,
                    min_position: query.min_position,
                    page_size: query.limit,
                    page_token: query.page_token,
                };
                let r = queries.list_red_black(self.request(r)?).await?;
                return Ok(red_black(r.into_inner()));
            }
            AdminSubcommand::SetClock { to } => {
                let r = admin
                    .set_clock(self.request(pb::SetClockRequest { now: Some(to) })?)
                    .await?
                    .into_inner();
                let now = time(r.now.as_ref());
                return Ok(Answer {
                    columns: vec!["clock"],
                    rows: vec![vec![now.clone()]],
                    footer: Vec::new(),
                    json: json!({ "now": now }),
                });
            }
            AdminSubcommand::WaitSettled { timeout_ms } => {
                let r = admin
                    .wait_settled(self.request(pb::WaitSettledRequest { timeout_ms })?)
                    .await?
                    .into_inner();
                let now = time(r.now.as_ref());
                return Ok(Answer {
                    columns: vec!["last position", "clock"],
                    rows: vec![vec![r.last_position.to_string(), now.clone()]],
                    footer: Vec::new(),
                    json: json!({ "last_position": r.last_position, "now": now }),
                });
            }
            AdminSubcommand::Status => {
                let r = MetaClient::new(self.channel.clone())
                    .server_info(self.request(pb::ServerInfoRequest {})?)
                    .await?;
                return Ok(status(r.into_inner()));
            }
            AdminSubcommand::Kpis { breakdown, query } => {
                let r = pb::GetKpisRequest {
                    breakdown: breakdown.pb() as i32,
                    min_position: query.min_position,
                    page_size: query.limit,
                    page_token: query.page_token,
                };
                let r = queries.get_kpis(self.request(r)?).await?;
                return Ok(kpis(r.into_inner()));
            }
            AdminSubcommand::Credit { worker, query } => {
                let r = pb::GetCreditRequest {
                    subject: Some(subject(SubjectKindArg::Worker, worker)),
                    min_position: query.min_position,
                    page_size: query.limit,
                    page_token: query.page_token,
                };
                let r = queries.get_credit(self.request(r)?).await?;
                return Ok(credit(r.into_inner()));
            }
        };
        Ok(command_reply(reply.into_inner()))
    }
}

fn command_id(options: &CommandOptions) -> String {
    options.command_id.clone().unwrap_or_else(fresh_uuid)
}

/// A random version-4 UUID from the standard library's randomly keyed hasher (no RNG crate
/// needed for an idempotency key).
fn fresh_uuid() -> String {
    let half = || std::hash::RandomState::new().build_hasher().finish();
    let mut value = (u128::from(half()) << 64) | u128::from(half());
    value = (value & !(0xF << 76)) | (0x4 << 76);
    value = (value & !(0x3 << 62)) | (0x2 << 62);
    let hex = format!("{value:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn subject(kind: SubjectKindArg, id: String) -> pb::CreditSubject {
    pb::CreditSubject {
        kind: kind.pb() as i32,
        id,
    }
}

fn list_open(query: &QueryOptions) -> pb::ListOpenRequest {
    pb::ListOpenRequest {
        min_position: query.min_position,
        page_size: query.limit,
        page_token: query.page_token.clone(),
    }
}

/// `2027-01-15T08:00:00Z`, or empty when unset.
fn time(ts: Option<&pb::Timestamp>) -> String {
    let Some(ts) = ts else {
        return String::new();
    };
    let days = ts.seconds.div_euclid(86_400);
    let secs = ts.seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}

/// An enum value's name without its type prefix, lowercase (`CREDIT_STANDING_GOOD` → `good`).
fn name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix).unwrap_or(full).to_lowercase()
}

fn standing(value: i32) -> String {
    pb::CreditStanding::try_from(value).map_or_else(
        |_| value.to_string(),
        |s| name(s.as_str_name(), "CREDIT_STANDING_"),
    )
}

fn subject_text(subject: Option<&pb::CreditSubject>) -> (String, String) {
    subject.map_or_else(Default::default, |s| {
        let kind = pb::CreditSubjectKind::try_from(s.kind).map_or_else(
            |_| s.kind.to_string(),
            |k| name(k.as_str_name(), "CREDIT_SUBJECT_KIND_"),
        );
        (kind, s.id.clone())
    })
}

fn next_page(token: &str) -> Vec<String> {
    if token.is_empty() {
        Vec::new()
    } else {
        vec![format!("next page: --page-token {token}")]
    }
}

fn command_reply(r: pb::AdminReply) -> Answer {
    Answer {
        columns: vec!["commit position", "revision", "events", "replayed"],
        rows: vec![vec![
            r.commit_position.to_string(),
            r.stream_revision.to_string(),
            r.event_types.join(", "),
            r.replayed.to_string(),
        ]],
        footer: Vec::new(),
        json: json!({
            "commit_position": r.commit_position,
            "stream_revision": r.stream_revision,
            "event_types": r.event_types,
            "replayed": r.replayed,
        }),
    }
}

fn rebuilt(r: pb::RebuildProjectionReply) -> Answer {
    Answer {
        columns: vec!["projection", "position"],
        rows: vec![vec![r.projection.clone(), r.position.to_string()]],
        footer: Vec::new(),
        json: json!({
            "projection": r.projection,
            "position": r.position,
        }),
    }
}

fn follow_ups(r: pb::ListOpenFollowUpsReply) -> Answer {
    let items: Vec<Value> = r
        .follow_ups
        .iter()
        .map(|f| {
            let (about_kind, about_id) = subject_text(f.about.as_ref());
            json!({
                "follow_up_id": f.follow_up_id,
                "kind": pb::FollowUpKind::try_from(f.kind)
                    .map_or_else(|_| f.kind.to_string(), |k| name(k.as_str_name(), "FOLLOW_UP_KIND_")),
                "reason": pb::FollowUpReason::try_from(f.reason)
                    .map_or_else(|_| f.reason.to_string(), |k| name(k.as_str_name(), "FOLLOW_UP_REASON_")),
                "about_kind": about_kind,
                "about_id": about_id,
                "order_id": f.order_id,
                "due_at": time(f.due_at.as_ref()),
                "opened_at": time(f.opened_at.as_ref()),
                "notes": f.notes.len(),
            })
        })
        .collect();
    listing(
        vec![
            "follow_up_id",
            "kind",
            "reason",
            "about_kind",
            "about_id",
            "order_id",
            "due_at",
            "notes",
        ],
        "follow_ups",
        items,
        &r.next_page_token,
        r.position,
    )
}

fn complaints(r: pb::ListOpenComplaintsReply) -> Answer {
    let items = r
        .complaints
        .iter()
        .map(|c| {
            json!({
                "complaint_id": c.complaint_id,
                "order_id": c.order_id,
                "customer_id": c.customer_id,
                "worker_id": c.worker_id,
                "category": pb::ComplaintCategory::try_from(c.category)
                    .map_or_else(|_| c.category.to_string(), |k| name(k.as_str_name(), "COMPLAINT_CATEGORY_")),
                "text": c.text,
                "filed_at": time(c.filed_at.as_ref()),
            })
        })
        .collect();
    listing(
        vec![
            "complaint_id",
            "order_id",
            "worker_id",
            "category",
            "filed_at",
            "text",
        ],
        "complaints",
        items,
        &r.next_page_token,
        r.position,
    )
}

fn disputes(r: pb::ListOpenDisputesReply) -> Answer {
    let items = r
        .disputes
        .iter()
        .map(|d| {
            json!({
                "dispute_id": d.dispute_id,
                "order_id": d.order_id,
                "raised_by": pb::DisputeParty::try_from(d.raised_by)
                    .map_or_else(|_| d.raised_by.to_string(), |k| name(k.as_str_name(), "DISPUTE_PARTY_")),
                "reason": d.reason,
                "raised_at": time(d.raised_at.as_ref()),
            })
        })
        .collect();
    listing(
        vec!["dispute_id", "order_id", "raised_by", "raised_at", "reason"],
        "disputes",
        items,
        &r.next_page_token,
        r.position,
    )
}

fn red_black(r: pb::ListRedBlackReply) -> Answer {
    let items = r
        .subjects
        .iter()
        .map(|s| {
            let (kind, id) = subject_text(s.subject.as_ref());
            json!({
                "kind": kind,
                "id": id,
                "score": s.score,
                "standing": standing(s.standing),
            })
        })
        .collect();
    listing(
        vec!["kind", "id", "score", "standing"],
        "subjects",
        items,
        &r.next_page_token,
        r.position,
    )
}

fn status(r: pb::ServerInfoResponse) -> Answer {
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let reads = r.read_models.unwrap_or_default();
    let role = pb::Role::try_from(r.role).map_or("unknown", |role| role.as_str_name());
    let json = json!({
        "version": r.version,
        "role": role,
        "actor": r.actor,
        "head_position": r.head_position,
        "read_models": {
            "applied_position": reads.applied_position,
            "behind": reads.behind,
            "caught_up": reads.caught_up,
            "checkpoint_position": reads.checkpoint_position,
            "restored_from": reads.restored_from,
            "rebuilds": reads.rebuilds,
        },
        "reactor_position": r.reactor_position,
    });
    let rows = [
        ("version", r.version.clone()),
        ("role", role.to_owned()),
        ("actor", r.actor.clone()),
        ("head position", r.head_position.to_string()),
        ("read models applied", reads.applied_position.to_string()),
        ("read models behind", reads.behind.to_string()),
        ("read models caught up", reads.caught_up.to_string()),
        ("read models checkpoint", opt(reads.checkpoint_position)),
        ("read models restored from", opt(reads.restored_from)),
        ("rebuilds", reads.rebuilds.to_string()),
        ("reactor position", opt(r.reactor_position)),
    ]
    .into_iter()
    .map(|(k, v)| vec![k.to_owned(), v])
    .collect();
    Answer {
        columns: vec!["field", "value"],
        rows,
        footer: Vec::new(),
        json,
    }
}

/// KPI rows: the key, every count, and the rates (null when their denominator is 0).
fn kpis(r: pb::GetKpisReply) -> Answer {
    let items = r
        .rows
        .iter()
        .map(|row| {
            let c = row.counts.unwrap_or_default();
            json!({
                "key": row.key,
                "posted": c.posted,
                "filled": c.filled,
                "first_accepts": c.first_accepts,
                "accept_minutes": c.accept_minutes,
                "check_ins": c.check_ins,
                "late_check_ins": c.late_check_ins,
                "served": c.served,
                "reviews": c.reviews,
                "good_reviews": c.good_reviews,
                "stars": c.stars,
                "complaints": c.complaints,
                "repurchased": c.repurchased,
                "good_review_rate_bp": row.good_review_rate_bp,
                "satisfaction_centi_stars": row.satisfaction_centi_stars,
                "repurchase_rate_bp": row.repurchase_rate_bp,
                "complaint_rate_bp": row.complaint_rate_bp,
                "lateness_rate_bp": row.lateness_rate_bp,
                "fill_rate_bp": row.fill_rate_bp,
                "mean_minutes_to_accept": row.mean_minutes_to_accept,
            })
        })
        .collect();
    listing(
        vec![
            "key",
            "posted",
            "filled",
            "served",
            "reviews",
            "good_reviews",
            "complaints",
            "repurchased",
            "check_ins",
            "late_check_ins",
            "fill_rate_bp",
            "good_review_rate_bp",
            "satisfaction_centi_stars",
            "mean_minutes_to_accept",
        ],
        "rows",
        items,
        &r.next_page_token,
        r.position,
    )
}

fn credit(r: pb::CreditReply) -> Answer {
    let (kind, id) = subject_text(r.subject.as_ref());
    let history: Vec<Value> = r
        .history
        .iter()
        .map(|h| {
            json!({
                "position": h.position,
                "event_type": h.event_type,
                "at": time(h.at.as_ref()),
                "rule": h.rule,
                "delta": h.delta,
                "score_after": h.score_after,
                "evidence_event_id": h.evidence_event_id,
            })
        })
        .collect();
    let columns = vec![
        "position",
        "event_type",
        "at",
        "rule",
        "delta",
        "score_after",
    ];
    let rows = rows(&columns, &history);
    let mut footer = vec![format!(
        "{kind} {id}: standing {}, score {}, red-listed {}",
        standing(r.standing),
        r.score.map_or_else(|| "-".to_owned(), |s| s.to_string()),
        r.red_listed
    )];
    footer.extend(next_page(&r.next_page_token));
    Answer {
        columns,
        rows,
        footer,
        json: json!({
            "subject": {"kind": kind, "id": id},
            "score": r.score,
            "standing": standing(r.standing),
            "red_listed": r.red_listed,
            "history": history,
            "next_page_token": r.next_page_token,
            "position": r.position,
        }),
    }
}

/// A query's rows as a table (`columns` picked from each item) and as JSON.
fn listing(
    columns: Vec<&'static str>,
    key: &str,
    items: Vec<Value>,
    next_page_token: &str,
    position: u64,
) -> Answer {
    let rows = rows(&columns, &items);
    let mut footer = vec![format!("{} row(s) at position {position}", items.len())];
    footer.extend(next_page(next_page_token));
    let mut json = serde_json::Map::new();
    json.insert(key.to_owned(), Value::Array(items));
    json.insert("next_page_token".into(), json!(next_page_token));
    json.insert("position".into(), json!(position));
    Answer {
        columns,
        rows,
        footer,
        json: Value::Object(json),
    }
}

fn rows(columns: &[&'static str], items: &[Value]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|c| match item.get(*c) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                })
                .collect()
        })
        .collect()
}

/// Writes a left-aligned table with a header row; cells are cut at 60 characters.
fn write_table(out: &mut dyn Write, columns: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    const MAX: usize = 60;
    let cut = |s: &str| -> String {
        let one_line = s.replace('\n', " ");
        if one_line.chars().count() > MAX {
            let mut cut: String = one_line.chars().take(MAX - 1).collect();
            cut.push('…');
            cut
        } else {
            one_line
        }
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cut(c)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| {
        let text: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", text.join("  ").trim_end())
    };
    line(out, &mut columns.iter().copied())?;
    for row in &cells {
        line(out, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        let ts = pb::Timestamp {
            seconds: 1_800_000_000,
            nanos: 0,
        };
        assert_eq!(time(Some(&ts)), "2027-01-15T08:00:00Z");
        assert_eq!(time(None), "");
    }

    #[test]
    fn fresh_command_ids_are_version_4_uuids() {
        let id = fresh_uuid();
        let parsed: daojia_domain::EventId = id.parse().unwrap();
        assert_eq!(parsed.uuid().get_version_num(), 4);
        assert_ne!(id, fresh_uuid());
    }

    #[test]
    fn tables_align_their_columns() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            &["a", "long header"],
            &[vec!["xyz".into(), "1".into()]],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a    long header\nxyz  1\n"
        );
    }
}
