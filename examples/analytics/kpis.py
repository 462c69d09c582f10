#!/usr/bin/env python3
"""Recompute daojia's KPI table from the raw event log with the official KurrentDB client.

Reads `$all` from the start over the EventStoreDB protocol that `daojia serve` speaks (only
the `order-` and `certificates-` streams, filtered on the server), replays the order events
and the home-visit certificates, and prints the same counts and rates as the KPI projection
(`Queries.GetKpis`, `daojia admin kpis`), in total and by day, category, county and company.

The definitions follow crates/projections/src/kpis.rs exactly:
  - an order counts on the China-time (UTC+8) day it was posted, in its service category, in
    the county whose seat is nearest to its location (great-circle distance), and for the
    companies of the workers involved (a worker's company is that of their home-visit
    certificate); posting and filling have no company yet;
  - posted: OrderPosted (once per order id); filled: the first time every slot is held;
    first_accepts / accept_minutes: the first take of each slot and the whole minutes from
    posting to it; check_ins / late_check_ins: WorkerCheckedIn and those with late_by > 0;
    served: OrderServed; reviews / good_reviews / stars: OrderReviewed (good = 4 stars or
    more); complaints: ComplaintFiled; repurchased: a served order whose customer posts again
    within 90 days of the service (counted once, on the served order's row);
  - rates are integers: basis points (1/100 %) rounded down, satisfaction in hundredths of a
    star, mean minutes to accept rounded down; a rate whose denominator is 0 is null.

Usage:
  kpis.py [--uri URI] [--ca-cert PEM] [--breakdown total|day|category|county|company|all]
          [--until POSITION] [--counties FILE] [--json]

  --uri       kurrentdbclient URI (default kdb://127.0.0.1:2113?Tls=false); with TLS:
              kdb://ACTOR:TOKEN@HOST:2113 and --ca-cert, ACTOR:TOKEN an analytics token
  --until     ignore events after this commit position (to compare with a projection that
              answered at that position)
  --counties  county seats as JSON {"counties": [{"zh": name, "lat": .., "lon": ..}, ...]}
              (what the server reads from <data-dir>/projections/counties.json); default:
              Fuzhou's eleven counties, as the server
  --json      one JSON document: {"position": P, "breakdowns": {"total": [rows], ...}}, each
              row shaped like a row of `daojia admin --json kpis`
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from kurrentdbclient import KurrentDBClient

CHINA_OFFSET_MS = 8 * 3_600_000
DAY_MS = 86_400_000
MINUTE_MS = 60_000
REPURCHASE_WINDOW_MS = 90 * 24 * 60 * MINUTE_MS
EARTH_RADIUS_M = 6_371_008.8
UNKNOWN_COUNTY = "unknown"

# Fuzhou (抚州) county seats, as built into the server (crates/projections/src/counties.rs).
FUZHOU = [
    ("临川区", 27.977, 116.312),
    ("东乡区", 28.248, 116.603),
    ("南城县", 27.569, 116.637),
    ("黎川县", 27.282, 116.907),
    ("南丰县", 27.218, 116.525),
    ("崇仁县", 27.764, 116.061),
    ("乐安县", 27.428, 115.831),
    ("宜黄县", 27.555, 116.236),
    ("金溪县", 27.918, 116.755),
    ("资溪县", 27.706, 117.060),
    ("广昌县", 26.838, 116.326),
]

COUNTS = (
    "posted",
    "filled",
    "first_accepts",
    "accept_minutes",
    "check_ins",
    "late_check_ins",
    "served",
    "reviews",
    "good_reviews",
    "stars",
    "complaints",
    "repurchased",
)
BREAKDOWNS = ("total", "day", "category", "county", "company")
# The schema version each event type is at; the server skips events it cannot upcast.
CURRENT_SCHEMA = {"OrderReviewed": 2}


def distance_m(seat: tuple[float, float], at: tuple[float, float]) -> float:
    """Haversine distance, computed in the same order as the server's `GeoPoint::distance_m`."""
    p1, p2 = math.radians(seat[0]), math.radians(at[0])
    dp = p2 - p1
    dl = math.radians(at[1] - seat[1])
    s_dp, s_dl = math.sin(dp / 2.0), math.sin(dl / 2.0)
    a = s_dp * s_dp + math.cos(p1) * math.cos(p2) * (s_dl * s_dl)
    return 2.0 * EARTH_RADIUS_M * math.asin(min(math.sqrt(a), 1.0))


def china_day(ms: int) -> str:
    days = (ms + CHINA_OFFSET_MS) // DAY_MS  # floor, as div_euclid
    return (dt.date(1970, 1, 1) + dt.timedelta(days=days)).isoformat()


@dataclass
class Order:
    customer: str
    day: str
    category: str
    county: str
    posted_at: int
    slots: int
    taken: set = field(default_factory=set)
    holders: dict = field(default_factory=dict)
    filled: bool = False
    served_at: int | None = None
    repurchased: bool = False


class Kpis:
    """The KPI model: counters in total and by day, category, county and company."""

    def __init__(self, counties: list[tuple[str, float, float]]):
        self.counties = counties
        self.rows = {b: defaultdict(lambda: dict.fromkeys(COUNTS, 0)) for b in BREAKDOWNS}
        self.orders: dict[str, Order] = {}
        self.company_of: dict[str, str] = {}
        self.last_served: dict[str, str] = {}
        self.rows["total"]["total"]  # the total row exists even before the first order

    def nearest_county(self, lat: float, lon: float) -> str:
        if not self.counties:
            return UNKNOWN_COUNTY
        best = min(
            range(len(self.counties)),
            key=lambda i: distance_m(self.counties[i][1:], (lat, lon)),
        )
        return self.counties[best][0]

    def bump(self, order_id: str, companies, **add: int) -> None:
        order = self.orders.get(order_id)
        if order is None:
            return
        targets = [
            self.rows["total"]["total"],
            self.rows["day"][order.day],
            self.rows["category"][order.category],
            self.rows["county"][order.county],
        ] + [self.rows["company"][c] for c in sorted(set(companies))]
        for row in targets:
            for name, n in add.items():
                row[name] += n

    def companies_of_order(self, order_id: str) -> list[str]:
        order = self.orders.get(order_id)
        if order is None:
            return []
        return [self.company_of[w] for w in order.holders.values() if w in self.company_of]

    def companies_of_worker(self, worker: str) -> list[str]:
        return [self.company_of[worker]] if worker in self.company_of else []

    def apply(self, stream: str, event_type: str, data: dict) -> None:
        if stream.startswith("certificates-"):
            if event_type == "CertificateIssued" and data["kind"] == "home_visit":
                self.company_of[data["worker"]] = data["company"]
            return
        if not stream.startswith("order-"):
            return
        order_id = str(uuid.UUID(stream[len("order-") :]))
        order = self.orders.get(order_id)
        if event_type == "OrderPosted":
            if order is not None:
                return
            self.note_repurchase(data["customer"], data["posted_at"])
            location = data["location"]
            self.orders[order_id] = Order(
                customer=data["customer"],
                day=china_day(data["posted_at"]),
                category=data["category"],
                county=self.nearest_county(location["lat"], location["lon"]),
                posted_at=data["posted_at"],
                slots=data["quote"]["workers"],
            )
            self.bump(order_id, [], posted=1)
        elif event_type == "OrderAccepted":
            companies = self.companies_of_worker(data["worker"])
            if order is None:
                return
            order.holders[data["slot"]] = data["worker"]
            first = data["slot"] not in order.taken
            order.taken.add(data["slot"])
            minutes = max(data["at"] - order.posted_at, 0) // MINUTE_MS
            newly_filled = not order.filled and len(order.holders) >= order.slots
            order.filled = order.filled or newly_filled
            if first:
                self.bump(order_id, companies, first_accepts=1, accept_minutes=minutes)
            if newly_filled:
                self.bump(order_id, [], filled=1)
        elif event_type in ("WorkerWithdrew", "WorkerNoShowRecorded"):
            if order is not None:
                order.holders.pop(data["slot"], None)
        elif event_type == "OrderReplanned":
            if order is not None:
                order.slots = data["workers"]
        elif event_type == "WorkerCheckedIn":
            late = 1 if data["late_by"] > 0 else 0
            companies = self.companies_of_worker(data["worker"])
            self.bump(order_id, companies, check_ins=1, late_check_ins=late)
        elif event_type == "OrderServed":
            if order is None:
                return
            order.served_at = data["at"]
            self.last_served[order.customer] = order_id
            self.bump(order_id, self.companies_of_order(order_id), served=1)
        elif event_type == "OrderReviewed":
            stars = data["stars"]
            self.bump(
                order_id,
                self.companies_of_order(order_id),
                reviews=1,
                good_reviews=1 if stars >= 4 else 0,
                stars=stars,
            )
        elif event_type == "ComplaintFiled":
            self.bump(order_id, self.companies_of_worker(data["against"]), complaints=1)

    def note_repurchase(self, customer: str, at: int) -> None:
        previous = self.last_served.get(customer)
        order = self.orders.get(previous) if previous else None
        if order is None or order.served_at is None:
            return
        within = order.served_at <= at <= order.served_at + REPURCHASE_WINDOW_MS
        if within and not order.repurchased:
            order.repurchased = True
            self.bump(previous, self.companies_of_order(previous), repurchased=1)

    def table(self, breakdown: str) -> list[dict]:
        """The rows of one breakdown, in the projection's order, with their rates."""
        return [with_rates(key, counts) for key, counts in sorted(self.rows[breakdown].items())]


def ratio(n: int, d: int, scale: int) -> int | None:
    return n * scale // d if d > 0 else None


def with_rates(key: str, c: dict) -> dict:
    return {
        "key": key,
        **c,
        "good_review_rate_bp": ratio(c["good_reviews"], c["reviews"], 10_000),
        "satisfaction_centi_stars": ratio(c["stars"], c["reviews"], 100),
        "repurchase_rate_bp": ratio(c["repurchased"], c["served"], 10_000),
        "complaint_rate_bp": ratio(c["complaints"], c["served"], 10_000),
        "lateness_rate_bp": ratio(c["late_check_ins"], c["check_ins"], 10_000),
        "fill_rate_bp": ratio(c["filled"], c["posted"], 10_000),
        "mean_minutes_to_accept": ratio(c["accept_minutes"], c["first_accepts"], 1),
    }


def decodable(event) -> dict | None:
    """The event's JSON data if the server's read models would decode it, else None."""
    try:
        meta = json.loads(event.metadata) if event.metadata else {}
        version = meta.get("schema_version") if isinstance(meta, dict) else None
    except ValueError:
        version = None
    current = CURRENT_SCHEMA.get(event.type, 1)
    if isinstance(version, int) and not 1 <= version <= current:
        return None
    try:
        data = json.loads(event.data)
    except ValueError:
        return None
    if event.type == "OrderReviewed" and version == 1:
        data = {**data, "tags": [], "text": data.get("comment", "")}
    return data if isinstance(data, dict) else None


def replay(client: KurrentDBClient, counties, until: int | None) -> tuple[Kpis, int]:
    kpis = Kpis(counties)
    position = 0
    # Server-side filter: only the streams the KPIs need cross the wire.
    events = client.read_all(
        filter_include=("order-", "certificates-"),
        filter_by_stream_name=True,
        filter_by_prefix=True,
    )
    for event in events:
        if until is not None and event.commit_position > until:
            break
        position = event.commit_position
        data = decodable(event)
        if data is None:
            continue
        try:
            kpis.apply(event.stream_name, event.type, data)
        except (KeyError, TypeError, ValueError) as e:  # not a daojia event: skipped, as there
            print(f"kpis.py: skipped {event.stream_name}@{event.stream_position}: {e!r}",
                  file=sys.stderr)
    return kpis, position


def load_counties(path: str | None):
    if path is None:
        return FUZHOU
    with open(path, encoding="utf-8") as f:
        return [(c["zh"], float(c["lat"]), float(c["lon"])) for c in json.load(f)["counties"]]


def fmt(value, scale: int = 1, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value / scale:.2f}{suffix}" if scale != 1 else f"{value}{suffix}"


def print_table(name: str, rows: list[dict]) -> None:
    columns = [
        ("key", lambda r: r["key"]),
        ("posted", lambda r: r["posted"]),
        ("filled", lambda r: r["filled"]),
        ("fill", lambda r: fmt(r["fill_rate_bp"], 100, " %")),
        ("min to accept", lambda r: fmt(r["mean_minutes_to_accept"])),
        ("served", lambda r: r["served"]),
        ("late", lambda r: fmt(r["lateness_rate_bp"], 100, " %")),
        ("reviews", lambda r: r["reviews"]),
        ("好评率", lambda r: fmt(r["good_review_rate_bp"], 100, " %")),
        ("stars", lambda r: fmt(r["satisfaction_centi_stars"], 100)),
        ("complaints", lambda r: fmt(r["complaint_rate_bp"], 100, " %")),
        ("复购率", lambda r: fmt(r["repurchase_rate_bp"], 100, " %")),
    ]
    cells = [[str(get(r)) for _, get in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (h, _) in enumerate(columns)]
    print(f"\n== by {name}" if name != "total" else "\n== total")
    print("  ".join(h.ljust(w) for (h, _), w in zip(columns, widths)).rstrip())
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uri", default="kdb://127.0.0.1:2113?Tls=false")
    parser.add_argument("--ca-cert", help="PEM of the server's CA (TLS)")
    parser.add_argument("--breakdown", choices=BREAKDOWNS + ("all",), default="all")
    parser.add_argument("--until", type=int, help="ignore events after this commit position")
    parser.add_argument("--counties", help="county seats JSON (default: Fuzhou's)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)

    root_certificates = None
    if args.ca_cert:
        with open(args.ca_cert, encoding="ascii") as f:
            root_certificates = f.read()
    client = KurrentDBClient(args.uri, root_certificates=root_certificates)
    try:
        kpis, position = replay(client, load_counties(args.counties), args.until)
    finally:
        client.close()

    names = BREAKDOWNS if args.breakdown == "all" else (args.breakdown,)
    tables = {name: kpis.table(name) for name in names}
    if args.json:
        print(json.dumps({"position": position, "breakdowns": tables}, ensure_ascii=False))
    else:
        print(f"KPIs recomputed from $all up to position {position}")
        for name, rows in tables.items():
            print_table(name, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
