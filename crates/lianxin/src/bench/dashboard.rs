//! Part (b): the three-rates dashboard over a year of demands, from the pre-summed
//! rate cells, against the full scan that judges every demand.
//!
//! The fill writes demands straight through the store's insert, which maintains the
//! cells as the desk's writes do. Every filled demand is stored as just received
//! (inserts cannot take later steps), but its rate contribution is that of a
//! plausible outcome — closed and rated, answered, late, rejected… — so the cells
//! hold the mix a real year would. The scan judges the rows as stored, so the two
//! agree on the number received and, by construction, on nothing else.

use super::world::{self, World};
use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use lianxin_domain::calendar::local_day;
use lianxin_domain::demand::{Rating, Status};
use lianxin_domain::rates::{DemandOutcome, RateCounts};
use lianxin_store::demands::{NewDemand, RateGroup};
use lianxin_store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::time::Instant;

/// Demands per fill transaction.
const FILL_CHUNK: usize = 10_000;
/// The period the demands are spread over and the dashboard asks about.
const DAYS: i64 = 365;

/// Fills `store` with `n` demands received over the last [`DAYS`] days, spread over
/// the world's communities and units. Returns the instant the contributions were
/// judged at.
pub async fn fill(store: &Store, world: &World, n: usize) -> Result<DateTime<Utc>> {
    let now = Utc::now();
    let mut rng = StdRng::seed_from_u64(20_240_601);
    let mut done = 0;
    let mut next_report = n / 10;
    while done < n {
        let chunk: Vec<NewDemand> = (0..FILL_CHUNK.min(n - done))
            .map(|_| plausible_demand(&mut rng, world, now))
            .collect();
        store
            .import_demands(&chunk)
            .await
            .map_err(|e| anyhow::anyhow!("filling demands: {e}"))?;
        done += chunk.len();
        if done >= next_report && done < n {
            eprintln!("bench:   {done} of {n} demands stored");
            next_report += n / 10;
        }
    }
    Ok(now)
}

/// A demand received some time in the last year at a random community, owned by a
/// random unit, counted as the outcome it plausibly has by `now`.
fn plausible_demand(rng: &mut StdRng, world: &World, now: DateTime<Utc>) -> NewDemand {
    let place = &world.communities[rng.gen_range(0..world.communities.len())];
    let unit = world.units[rng.gen_range(0..world.units.len())].id;
    let received_at = now - Duration::seconds(rng.gen_range(0..DAYS * 86_400));
    let deadline = received_at + Duration::days(rng.gen_range(1..=15));
    let outcome = plausible_outcome(rng, received_at, deadline, now);
    let bits = RateCounts::of(&outcome, now).to_bits().unwrap_or(1);
    world::demand(place, unit, received_at, deadline, bits)
}

fn plausible_outcome(
    rng: &mut StdRng,
    received_at: DateTime<Utc>,
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DemandOutcome {
    let status = match rng.gen_range(0..100) {
        0..=59 => Status::Closed,
        60..=69 => Status::Answered,
        70..=79 => Status::InProgress,
        80..=84 => Status::Assigned,
        85..=89 => Status::Received,
        90..=94 => Status::Rejected,
        _ => Status::Merged,
    };
    let responded = matches!(
        status,
        Status::InProgress | Status::Answered | Status::Closed
    );
    // Most respond well within the limit, some late.
    let first_response_at = responded.then(|| {
        let limit = (deadline - received_at).num_seconds();
        let at = received_at + Duration::seconds(rng.gen_range(0..limit * 6 / 5));
        at.min(now)
    });
    let rating = match status {
        Status::Closed => match rng.gen_range(0..100) {
            0..=59 => Some(Rating::Satisfied),
            60..=84 => Some(Rating::BasicallySatisfied),
            85..=94 => Some(Rating::Unsatisfied),
            _ => None,
        },
        _ => None,
    };
    DemandOutcome {
        received_at,
        response_deadline: deadline,
        handling_deadline: deadline,
        first_response_at,
        status,
        rating,
    }
}

/// The period the dashboard asks about: the Shanghai days of the fill.
pub fn period(now: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    (local_day(now - Duration::days(DAYS)), local_day(now))
}

/// How many rate cells the period holds: what the dashboard query adds up. Read
/// beside the store, on a connection of its own, since the store does not say.
pub async fn cells_in_period(db: &Path, now: DateTime<Utc>) -> Result<u64> {
    use sqlx::Connection;
    let (from, to) = period(now);
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display())).await?;
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM rate_cells WHERE day >= $1 AND day <= $2")
            .bind(from.to_string())
            .bind(to.to_string())
            .fetch_one(&mut conn)
            .await?;
    conn.close().await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Times of the dashboard query (rates by unit, whole period), in milliseconds, and
/// the number it counted as received.
pub async fn time_cells(store: &Store, now: DateTime<Utc>, runs: usize) -> Result<(Vec<f64>, u64)> {
    let (from, to) = period(now);
    let mut times = Vec::with_capacity(runs);
    let mut received = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let rows = store
            .rate_counts(from, to, None, None, RateGroup::Unit)
            .await
            .context("the dashboard query")?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        received = rows.iter().map(|r| r.counts.received).sum();
    }
    Ok((times, received))
}

/// Times of the full scan over the same period, in milliseconds, and the number it
/// counted as received.
pub async fn time_scan(store: &Store, now: DateTime<Utc>, runs: usize) -> Result<(Vec<f64>, u64)> {
    let (from, to) = period(now);
    let mut times = Vec::with_capacity(runs);
    let mut received = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let counts = store
            .rate_counts_by_scan(from, to, None, now)
            .await
            .context("the full scan")?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        received = counts.received;
    }
    Ok((times, received))
}
