//! The service catalogue: 48 home-service types with pricing unit, base price in fen, required
//! skill certificates and typical duration, kept as data in `data/catalog.tsv` (embedded at
//! compile time with `include_str!`), and the price quote given at posting time.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::money::Fen;
use crate::time::Minutes;

/// The catalogue data file, embedded in the binary.
pub const CATALOG_TSV: &str = include_str!("../data/catalog.tsv");

/// A service type code such as `C01`: one upper-case letter and two digits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceCode(String);

impl ServiceCode {
    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ServiceCode {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        match b {
            [l, d1, d2] if l.is_ascii_uppercase() && d1.is_ascii_digit() && d2.is_ascii_digit() => {
                Ok(Self(s.to_owned()))
            }
            _ => Err(DomainError::InvalidServiceCode {
                value: s.chars().take(16).collect(),
            }),
        }
    }
}

impl TryFrom<String> for ServiceCode {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ServiceCode> for String {
    fn from(code: ServiceCode) -> Self {
        code.0
    }
}

impl fmt::Display for ServiceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A skill certificate kind (`electrician`, `elder_carer`, …): lower-case ASCII and underscores.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SkillKind(String);

impl SkillKind {
    /// The kind as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SkillKind {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 40
            && s.bytes().all(|c| c.is_ascii_lowercase() || c == b'_')
            && !s.starts_with('_')
            && !s.ends_with('_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(DomainError::InvalidSkill {
                value: s.chars().take(40).collect(),
            })
        }
    }
}

impl TryFrom<String> for SkillKind {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<SkillKind> for String {
    fn from(kind: SkillKind) -> Self {
        kind.0
    }
}

impl fmt::Display for SkillKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Service categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 保洁.
    Cleaning,
    /// 家务.
    Housekeeping,
    /// 母婴.
    Maternity,
    /// 育儿.
    Childcare,
    /// 养老.
    Eldercare,
    /// 维修.
    Repair,
}

impl Category {
    /// Every category, in catalogue order.
    pub const ALL: [Category; 6] = [
        Category::Cleaning,
        Category::Housekeeping,
        Category::Maternity,
        Category::Childcare,
        Category::Eldercare,
        Category::Repair,
    ];

    /// The key used in the catalogue file and the API (`cleaning`, `eldercare`, …).
    pub const fn key(self) -> &'static str {
        match self {
            Self::Cleaning => "cleaning",
            Self::Housekeeping => "housekeeping",
            Self::Maternity => "maternity",
            Self::Childcare => "childcare",
            Self::Eldercare => "eldercare",
            Self::Repair => "repair",
        }
    }

    /// The Chinese name.
    pub const fn name_zh(self) -> &'static str {
        match self {
            Self::Cleaning => "保洁",
            Self::Housekeeping => "家务",
            Self::Maternity => "母婴",
            Self::Childcare => "育儿",
            Self::Eldercare => "养老",
            Self::Repair => "维修",
        }
    }

    /// The English name.
    pub const fn name_en(self) -> &'static str {
        match self {
            Self::Cleaning => "cleaning",
            Self::Housekeeping => "housekeeping",
            Self::Maternity => "maternity care",
            Self::Childcare => "childcare",
            Self::Eldercare => "elder care",
            Self::Repair => "repair and installation",
        }
    }
}

impl FromStr for Category {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|c| c.key() == s).ok_or(())
    }
}

/// What one unit of a service is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PricingUnit {
    /// Per hour.
    Hour,
    /// Per visit.
    Visit,
    /// Per day.
    Day,
    /// Per month (live-in and long-term care).
    Month,
    /// Per square metre.
    Sqm,
}

impl PricingUnit {
    /// Every unit.
    pub const ALL: [PricingUnit; 5] = [
        PricingUnit::Hour,
        PricingUnit::Visit,
        PricingUnit::Day,
        PricingUnit::Month,
        PricingUnit::Sqm,
    ];

    /// The unit's name in the catalogue file and the API (`hour`, …, `sqm`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Visit => "visit",
            Self::Day => "day",
            Self::Month => "month",
            Self::Sqm => "sqm",
        }
    }

    /// The largest quantity one order may ask for in this unit (bad-input guard).
    pub const fn max_quantity(self) -> u32 {
        match self {
            Self::Hour => 24,
            Self::Visit => 10,
            Self::Day => 366,
            Self::Month => 24,
            Self::Sqm => 5_000,
        }
    }
}

impl FromStr for PricingUnit {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|u| u.as_str() == s).ok_or(())
    }
}

/// One service type of the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceType {
    /// Code, e.g. `E01`.
    pub code: ServiceCode,
    /// Category.
    pub category: Category,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// Pricing unit.
    pub unit: PricingUnit,
    /// Base price per unit.
    pub base_price: Fen,
    /// Skill certificates a worker must hold besides the home-visit certificate.
    pub certificates: Vec<SkillKind>,
    /// Typical duration of one visit (zero for live-in / long-term services).
    pub typical_duration: Minutes,
}

/// A price quote, fixed at posting time and carried in the `OrderPosted` event (计价透明).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// Pricing unit of the service.
    pub unit: PricingUnit,
    /// Price of one unit for one worker.
    pub unit_price: Fen,
    /// Units ordered.
    pub quantity: u32,
    /// Workers needed (slots).
    pub workers: u32,
    /// `unit_price × quantity × workers`.
    pub total: Fen,
}

impl ServiceType {
    /// Quote for `quantity` units by `workers` workers. Refuses a zero or excessive quantity.
    pub fn quote(&self, quantity: u32, workers: u32) -> Result<Quote, DomainError> {
        let max = self.unit.max_quantity();
        if quantity == 0 || quantity > max {
            return Err(DomainError::QuantityOutOfRange { quantity, max });
        }
        let total = self
            .base_price
            .checked_mul(quantity)?
            .checked_mul(workers)?;
        Ok(Quote {
            unit: self.unit,
            unit_price: self.base_price,
            quantity,
            workers,
            total,
        })
    }
}

/// The catalogue: service types in file order, unique codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    services: Vec<ServiceType>,
}

impl Catalog {
    /// The catalogue built into this binary (`data/catalog.tsv`), parsed once.
    pub fn builtin() -> Result<&'static Catalog, DomainError> {
        static BUILTIN: OnceLock<Result<Catalog, DomainError>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| Catalog::parse(CATALOG_TSV))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Parses catalogue TSV text (see the header of `data/catalog.tsv`).
    pub fn parse(text: &str) -> Result<Catalog, DomainError> {
        let mut services: Vec<ServiceType> = Vec::new();
        let mut header_seen = false;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            if raw.starts_with('#') || raw.trim().is_empty() {
                continue;
            }
            if !header_seen {
                header_seen = true;
                if raw.starts_with("code\t") {
                    continue;
                }
            }
            let service =
                parse_line(raw).map_err(|reason| DomainError::CatalogInvalid { line, reason })?;
            if services.iter().any(|s| s.code == service.code) {
                return Err(DomainError::CatalogInvalid {
                    line,
                    reason: format!("duplicate code {}", service.code),
                });
            }
            services.push(service);
        }
        Ok(Catalog { services })
    }

    /// All service types, in file order.
    pub fn services(&self) -> &[ServiceType] {
        &self.services
    }

    /// The skill vocabulary: every skill certificate kind some service requires, sorted and
    /// without repeats.
    pub fn skills(&self) -> Vec<SkillKind> {
        let mut skills: Vec<SkillKind> = self
            .services
            .iter()
            .flat_map(|s| s.certificates.iter().cloned())
            .collect();
        skills.sort();
        skills.dedup();
        skills
    }

    /// The service type with this code.
    pub fn get(&self, code: &ServiceCode) -> Result<&ServiceType, DomainError> {
        self.services
            .iter()
            .find(|s| &s.code == code)
            .ok_or_else(|| DomainError::UnknownService { code: code.clone() })
    }

    /// The price of `quantity` units of `service` for one worker.
    pub fn quote(&self, service: &ServiceCode, quantity: u32) -> Result<Fen, DomainError> {
        Ok(self.get(service)?.quote(quantity, 1)?.total)
    }
}

fn parse_line(raw: &str) -> Result<ServiceType, String> {
    let cols: Vec<&str> = raw.split('\t').collect();
    let [code, category, zh, en, unit, price, certs, minutes] = cols.as_slice() else {
        return Err(format!(
            "expected 8 tab-separated columns, found {}",
            cols.len()
        ));
    };
    let code: ServiceCode = code.parse().map_err(|e: DomainError| e.to_string())?;
    let category: Category = category
        .parse()
        .map_err(|()| format!("unknown category {category:?}"))?;
    let unit: PricingUnit = unit
        .parse()
        .map_err(|()| format!("unknown unit {unit:?}"))?;
    let base_price = price
        .parse::<i64>()
        .map_err(|_| format!("price {price:?} is not integer fen"))?;
    if base_price <= 0 {
        return Err(format!("price {base_price} must be positive"));
    }
    let certificates = if *certs == "-" {
        Vec::new()
    } else {
        certs
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<SkillKind>, _>>()
            .map_err(|e| e.to_string())?
    };
    let typical = minutes
        .parse::<u32>()
        .map_err(|_| format!("typical minutes {minutes:?} is not a whole number"))?;
    if zh.trim().is_empty() || en.trim().is_empty() {
        return Err("empty name".to_owned());
    }
    if typical == 0 && unit != PricingUnit::Month {
        return Err("only monthly (live-in) services may have no typical duration".to_owned());
    }
    Ok(ServiceType {
        code,
        category,
        name_zh: (*zh).to_owned(),
        name_en: (*en).to_owned(),
        unit,
        base_price: Fen(base_price),
        certificates,
        typical_duration: Minutes(typical),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_48_valid_types_in_six_categories() {
        let catalog = Catalog::builtin().unwrap();
        assert_eq!(catalog.services().len(), 48);
        for category in [
            Category::Cleaning,
            Category::Housekeeping,
            Category::Maternity,
            Category::Childcare,
            Category::Eldercare,
            Category::Repair,
        ] {
            assert!(
                catalog.services().iter().any(|s| s.category == category),
                "{category:?} missing"
            );
        }
        let e10 = catalog.get(&"E10".parse().unwrap()).unwrap();
        assert_eq!(e10.base_price, Fen(8000));
        assert_eq!(
            e10.certificates,
            vec!["elder_carer".parse().unwrap(), "first_aid".parse().unwrap()]
        );
        assert_eq!(e10.typical_duration, Minutes(60));
    }

    #[test]
    fn quote_multiplies_integer_fen() {
        let catalog = Catalog::builtin().unwrap();
        assert_eq!(catalog.quote(&"C01".parse().unwrap(), 3), Ok(Fen(10_500)));
        let moving = catalog
            .get(&"R06".parse().unwrap())
            .unwrap()
            .quote(1, 3)
            .unwrap();
        assert_eq!(moving.total, Fen(180_000));
        assert_eq!(
            catalog.quote(&"C01".parse().unwrap(), 0),
            Err(DomainError::QuantityOutOfRange {
                quantity: 0,
                max: 24
            })
        );
        assert_eq!(
            catalog.quote(&"Z99".parse().unwrap(), 1),
            Err(DomainError::UnknownService {
                code: "Z99".parse().unwrap()
            })
        );
    }

    #[test]
    fn malformed_catalog_lines_name_the_line() {
        let bad = "code\tx\n# c\nC01\tcleaning\t日常保洁\troutine\thour\t35.5\t-\t180\n";
        assert!(matches!(
            Catalog::parse(bad),
            Err(DomainError::CatalogInvalid { line: 3, .. })
        ));
        let dup = "C01\tcleaning\ta\tb\thour\t100\t-\t60\nC01\tcleaning\ta\tb\thour\t100\t-\t60\n";
        assert!(matches!(
            Catalog::parse(dup),
            Err(DomainError::CatalogInvalid { line: 2, .. })
        ));
        let short = "C01\tcleaning\ta\n";
        assert!(matches!(
            Catalog::parse(short),
            Err(DomainError::CatalogInvalid { line: 1, .. })
        ));
    }

    #[test]
    fn vocabularies_round_trip_and_skills_are_the_required_certificates() {
        for category in Category::ALL {
            assert_eq!(category.key().parse(), Ok(category));
        }
        for unit in PricingUnit::ALL {
            assert_eq!(unit.as_str().parse(), Ok(unit));
            assert_eq!(
                serde_json::to_value(unit).unwrap(),
                serde_json::Value::from(unit.as_str())
            );
        }
        let skills = Catalog::builtin().unwrap().skills();
        let names: Vec<&str> = skills.iter().map(SkillKind::as_str).collect();
        assert!(names.contains(&"elder_carer"), "{names:?}");
        assert!(names.contains(&"disinfection"), "{names:?}");
        assert!(!names.contains(&"eldercare"), "{names:?}");
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    }

    #[test]
    fn codes_and_skills_are_validated() {
        assert!("c01".parse::<ServiceCode>().is_err());
        assert!("C1".parse::<ServiceCode>().is_err());
        assert!("Elder".parse::<SkillKind>().is_err());
        assert!("_x".parse::<SkillKind>().is_err());
        assert!("elder_carer".parse::<SkillKind>().is_ok());
    }
}
