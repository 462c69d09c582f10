//! The end of a simulation: a readable KPI table and one JSON line.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::pb;

/// What the simulation itself saw happen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Orders the server took.
    pub posted: u64,
    /// Grab-pool orders posted.
    pub grab_pool: u64,
    /// Emergency elder calls posted.
    pub emergencies: u64,
    /// Orders rebooking a favourite worker (preferred dispatch).
    pub rebookings: u64,
    /// Offers workers saw.
    pub offers_seen: u64,
    /// Offers to watched workers that their notification stream delivered before they answered.
    pub offers_streamed: u64,
    /// Offers to watched workers their stream had not delivered after 10 s (answered anyway).
    pub offers_not_streamed: u64,
    /// Offers declined.
    pub declines: u64,
    /// Offers left to lapse.
    pub ignored_offers: u64,
    /// Grab attempts.
    pub grabs: u64,
    /// Grabs that won the order.
    pub grabbed: u64,
    /// Orders cancelled by their customer.
    pub cancelled: u64,
    /// Orders served.
    pub served: u64,
    /// Reviews written.
    pub reviews: u64,
    /// Complaints filed.
    pub complaints: u64,
    /// `CreditAdjusted` events over all workers, customers and companies.
    pub credit_adjustments: u64,
    /// Workers whose standing is "in retraining" at the end.
    pub workers_in_retraining: u64,
    /// Commands the server refused, by reason.
    pub refused: BTreeMap<String, u64>,
}

/// The outcome of a simulation.
#[derive(Clone, Debug)]
pub struct Report {
    /// The KPI projection's totals (`Queries.GetKpis`).
    pub kpis: pb::KpiCounts,
    /// What the simulation counted.
    pub counts: Counts,
    /// Median seconds from posting to a worker taking the order.
    pub median_accept_s: Option<u64>,
    /// Simulated minutes stepped.
    pub simulated_minutes: u32,
    /// Events in the log (in-process: counted in the log after the run; `--server`: those the
    /// simulation's own commands appended, a lower bound).
    pub events_appended: u64,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// The log position the run ended at.
    pub last_position: u64,
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        round4(n as f64 / d as f64)
    }
}

/// Terminal columns of `s`: CJK characters take two.
fn columns(s: &str) -> usize {
    s.chars()
        .map(|c| match c {
            '\u{2E80}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{FF00}'..='\u{FF60}' => 2,
            _ => 1,
        })
        .sum()
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

impl Report {
    /// Fill rate: filled per posted order.
    pub fn fill_rate(&self) -> f64 {
        ratio(self.kpis.filled, self.kpis.posted)
    }
    /// 好评率: ≥ 4★ reviews per review.
    pub fn good_review_rate(&self) -> f64 {
        ratio(self.kpis.good_reviews, self.kpis.reviews)
    }
    /// Satisfaction: mean stars as a fraction of 5★.
    pub fn satisfaction(&self) -> f64 {
        ratio(self.kpis.stars, self.kpis.reviews * 5)
    }
    /// 复购率: served orders followed by another order of the customer within 90 days.
    pub fn repurchase_rate(&self) -> f64 {
        ratio(self.kpis.repurchased, self.kpis.served)
    }
    /// Complaints per served order.
    pub fn complaint_rate(&self) -> f64 {
        ratio(self.kpis.complaints, self.kpis.served)
    }
    /// Late check-ins per check-in.
    pub fn lateness_rate(&self) -> f64 {
        ratio(self.kpis.late_check_ins, self.kpis.check_ins)
    }

    /// The JSON object of the last line (keys in a fixed order).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "orders_posted": self.kpis.posted,
            "orders_filled": self.kpis.filled,
            "fill_rate": self.fill_rate(),
            "median_accept_s": self.median_accept_s,
            "good_review_rate": self.good_review_rate(),
            "satisfaction": self.satisfaction(),
            "repurchase_rate": self.repurchase_rate(),
            "complaint_rate": self.complaint_rate(),
            "lateness_rate": self.lateness_rate(),
            "credit_adjustments": self.counts.credit_adjustments,
            "workers_in_retraining": self.counts.workers_in_retraining,
            "events_appended": self.events_appended,
            "wall_s": (self.wall_s * 1_000.0).round() / 1_000.0,
        })
    }

    /// Writes the KPI table, then the JSON object as the last line.
    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let k = &self.kpis;
        let c = &self.counts;
        let pct = |x: f64| format!("{:.1} %", x * 100.0);
        let rows: Vec<(&str, String, &str)> = vec![
            ("orders posted", k.posted.to_string(), "KPI projection"),
            (
                "  grab pool / emergency / rebooked favourite",
                format!("{} / {} / {}", c.grab_pool, c.emergencies, c.rebookings),
                "simulation",
            ),
            (
                "orders filled",
                format!("{} ({})", k.filled, pct(self.fill_rate())),
                "KPI projection",
            ),
            (
                "median time to accept",
                self.median_accept_s
                    .map_or("-".into(), |s| format!("{s} s")),
                "simulation",
            ),
            (
                "offers seen / declined / let lapse",
                format!("{} / {} / {}", c.offers_seen, c.declines, c.ignored_offers),
                "simulation",
            ),
            (
                "offers to watched workers: streamed / missed",
                format!("{} / {}", c.offers_streamed, c.offers_not_streamed),
                "WatchNotifications",
            ),
            (
                "grab attempts / won",
                format!("{} / {}", c.grabs, c.grabbed),
                "simulation",
            ),
            (
                "cancelled by customer",
                c.cancelled.to_string(),
                "simulation",
            ),
            ("served", k.served.to_string(), "KPI projection"),
            (
                "good-review rate 好评率",
                pct(self.good_review_rate()),
                "KPI projection",
            ),
            (
                "satisfaction",
                format!(
                    "{:.2} ★ ({})",
                    if k.reviews == 0 {
                        0.0
                    } else {
                        k.stars as f64 / k.reviews as f64
                    },
                    pct(self.satisfaction())
                ),
                "KPI projection",
            ),
            (
                "repurchase rate 复购率",
                pct(self.repurchase_rate()),
                "KPI projection",
            ),
            (
                "complaint rate",
                pct(self.complaint_rate()),
                "KPI projection",
            ),
            ("lateness rate", pct(self.lateness_rate()), "KPI projection"),
            (
                "credit adjustments",
                c.credit_adjustments.to_string(),
                "Queries.GetCredit",
            ),
            (
                "workers in retraining",
                c.workers_in_retraining.to_string(),
                "Queries.GetCredit",
            ),
            (
                "events appended",
                self.events_appended.to_string(),
                "event log",
            ),
            (
                "simulated time",
                format!(
                    "{} h {:02} min",
                    self.simulated_minutes / 60,
                    self.simulated_minutes % 60
                ),
                "simulation",
            ),
            ("wall time", format!("{:.1} s", self.wall_s), "simulation"),
        ];
        let width = rows.iter().map(|r| columns(r.0)).max().unwrap_or(0);
        let value_width = rows.iter().map(|r| columns(&r.1)).max().unwrap_or(0);
        writeln!(out, "daojia simulate: one Fuzhou day")?;
        for (name, value, source) in &rows {
            let pad = width - columns(name);
            let vpad = value_width - columns(value);
            writeln!(
                out,
                "  {name}{}  {}{value}  ({source})",
                " ".repeat(pad),
                " ".repeat(vpad)
            )?;
        }
        if !c.refused.is_empty() {
            let list: Vec<String> = c.refused.iter().map(|(r, n)| format!("{r} {n}")).collect();
            writeln!(out, "  commands refused by the server: {}", list.join(", "))?;
        }
        writeln!(out, "{}", self.json())
    }
}
