//! The matcher's own input model: workers and orders as the matching engine sees them,
//! independent of gRPC and of the event types. The service maps its ids to these dense ones.

use std::fmt;

/// A worker, by dense index assigned by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkerId(pub u32);

/// An order, by dense index assigned by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderId(pub u32);

/// A WGS-84 point in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeoPoint {
    /// Latitude, -90..=90.
    pub lat: f64,
    /// Longitude, -180..=180.
    pub lon: f64,
}

impl GeoPoint {
    /// Whether both coordinates are finite and in range (the matcher ignores points that are not).
    pub fn is_valid(&self) -> bool {
        (-90.0..=90.0).contains(&self.lat) && (-180.0..=180.0).contains(&self.lon)
    }
}

/// Minutes since an epoch the caller chooses (the matcher never reads a clock).
pub type Minute = i64;

/// A half-open time interval `[start, end)` in minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Interval {
    /// First minute.
    pub start: Minute,
    /// First minute after.
    pub end: Minute,
}

impl Interval {
    /// Whether two intervals share a minute.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// A set of up to 64 small ids (service types or certificate kinds) as a bitset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BitSet64(pub u64);

impl BitSet64 {
    /// The empty set.
    pub const EMPTY: BitSet64 = BitSet64(0);

    /// A set with one element (`bit` below 64).
    pub fn single(bit: u8) -> Self {
        BitSet64(1u64.checked_shl(u32::from(bit)).unwrap_or(0))
    }

    /// Adds an element.
    pub fn with(self, bit: u8) -> Self {
        BitSet64(self.0 | BitSet64::single(bit).0)
    }

    /// Whether `bit` is in the set.
    pub fn contains(&self, bit: u8) -> bool {
        self.0 & BitSet64::single(bit).0 != 0
    }

    /// Whether every element of `other` is in this set.
    pub fn contains_all(&self, other: BitSet64) -> bool {
        self.0 & other.0 == other.0
    }
}

/// Service categories (each has its own radius limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// 保洁
    Cleaning,
    /// 家务
    Housekeeping,
    /// 母婴
    Maternity,
    /// 育儿
    Childcare,
    /// 养老
    Eldercare,
    /// 维修
    Repair,
}

impl Category {
    /// Every category, in index order.
    pub const ALL: [Category; 6] = [
        Category::Cleaning,
        Category::Housekeeping,
        Category::Maternity,
        Category::Childcare,
        Category::Eldercare,
        Category::Repair,
    ];

    /// Index into per-category tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a worker's standing allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkerStatus {
    /// In the matching pool.
    Active,
    /// Suspended by ops.
    Suspended,
    /// On the black list.
    BlackListed,
    /// Must complete retraining first.
    InRetraining,
    /// Not taking work now (off shift).
    Offline,
}

/// A worker as the matcher sees her.
#[derive(Clone, Debug, PartialEq)]
pub struct Worker {
    /// Dense id.
    pub id: WorkerId,
    /// Where she is (live location or home).
    pub location: GeoPoint,
    /// Service types (catalogue indices, below 64) she is skilled in.
    pub skills: BitSet64,
    /// Certificate kinds she holds that are valid now.
    pub certificates: BitSet64,
    /// Whether she has a signed platform contract with injury cover.
    pub contracted: bool,
    /// Standing.
    pub status: WorkerStatus,
    /// Accepted bookings (time the worker is taken).
    pub bookings: Vec<Interval>,
    /// Credit score, 0..=1000.
    pub credit: u16,
    /// Orders served recently (for fairness).
    pub recent_load: u16,
    /// The area she serves: a centre and a radius in km (none: anywhere).
    pub service_area: Option<(GeoPoint, f64)>,
}

/// How urgent an order is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Scheduled or ordinary instant order.
    Normal,
    /// Ops or policy raised it.
    High,
    /// One-tap elder call (一键呼叫).
    Emergency,
}

/// An order as the matcher sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    /// Dense id.
    pub id: OrderId,
    /// Where the service happens.
    pub location: GeoPoint,
    /// Service type (catalogue index, below 64).
    pub service: u8,
    /// Its category (radius limit).
    pub category: Category,
    /// Certificate kinds the service requires.
    pub required_certificates: BitSet64,
    /// When the service happens (start to start + duration).
    pub window: Interval,
    /// Workers needed (big orders need several, all distinct).
    pub workers_needed: u8,
    /// A worker the customer asked for again (复购).
    pub preferred: Option<WorkerId>,
    /// Urgency.
    pub priority: Priority,
    /// Workers who declined or let an offer expire: never offered again.
    pub declined: Vec<WorkerId>,
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}", self.0)
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "o{}", self.0)
    }
}
