//! The rider-friendly map's algorithms, with no I/O: the server, the CLI (imports,
//! `lianxin bench map`, the demo) and the tests all use this crate; files, databases
//! and HTTP are theirs.
//!
//! - [`coord`]: validated WGS-84 points, GCJ-02 / BD-09 conversion with exact
//!   (iterative) inverses, great-circle distance.
//! - [`index`]: a static k-d tree for the nearest N stations (with a caller's filter
//!   for amenities and open-now) and for everything within a radius.
//! - [`reach`]: the radius a travel time (15 minutes) reaches by mode, without a road
//!   network.
//! - [`road`]: travel time along a road network imported from an OSM PBF extract:
//!   access by mode, snapping, budgeted Dijkstra, a compact blob for the database.
//! - [`hours`]: weekly opening hours in Asia/Shanghai with dated exceptions; open now,
//!   next change.
//! - [`cover`]: the planner's coverage report, uncovered clusters, and greedy siting of
//!   the next K stations with an exact solver to check it.
//! - [`search`]: "where is shop X": fuzzy matching of Chinese shop names by text,
//!   pinyin initials and pinyin prefixes.
//! - [`synth`]: clustered synthetic points from a seed, shared by benchmarks and demo.

pub mod coord;
pub mod cover;
pub mod hours;
pub mod index;
pub mod reach;
pub mod road;
pub mod search;
pub mod synth;

pub use coord::{from_wgs84, haversine_m, to_wgs84, CoordError, Datum, LatLon, EARTH_RADIUS_M};
pub use cover::{coverage, site_exact, site_greedy, uncovered_clusters, Coverage, PlanError};
pub use hours::{DayRule, HoursError, OpeningHours};
pub use index::PointIndex;
pub use road::{Reach, RoadError, RoadNetwork};
pub use search::{Hit, MatchKind, NameIndex};
