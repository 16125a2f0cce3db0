//! Lianxin's domain: the pure rules of the platform.
//!
//! Everything here is deterministic and free of I/O: no database, no HTTP, no async.
//! The storage crate persists these values and the server crate parses requests into
//! them, so a rule lives in exactly one place and is tested without a running system.
//!
//! - [`place`]: the place hierarchy (region → … → household) and its codes.
//! - [`org`]: kinds of organisation.
//! - [`person`]: people's validated personal data (phone, ID-card number).
//! - [`pii`]: keyed hashing and encryption of personal information (PIPL).
//! - [`relation`]: effective-dated relations (member of, holds post, assigned to).
//! - [`role`]: account roles, permissions and data scopes.
//! - [`draft`]: validated inputs for new registry records, shared by API and imports.
//! - [`demand`]: the demand closed loop as a state machine (first-receiver responsibility).
//! - [`intake`]: what a demand is made of when it comes in: kind, channel, text, photos.
//! - [`routing`]: which unit answers a demand, and the escalation chain above it.
//! - [`rates`]: the three rates of the demand loop (响应率, 解决率, 满意率).
//! - [`audit`]: the hash chain that makes the audit trail tamper-evident.
//! - [`contact`]: officials' contact points (priority, successors), visits, household
//!   coverage, organisation tiers.
//! - [`tiers`]: organisation tiers around [`contact::tier`]: indicators with their
//!   evidence, improvement-plan actions, indicator files.
//! - [`community`]: 双进 registration, the needs list and its claims, quarters.
//! - [`calendar`]: the Asia/Shanghai working-day calendar and demand time limits.
//! - [`map`]: the rider-friendly map's records: stations, malls, merchants, hot spots.
//! - [`gate`]: statistics of the rider gate log (entries per hour, time at the gate).
//! - [`points`]: the points ledger's rules: accounts and assets, scoring rules with caps
//!   and multipliers, award ids, redemption windows, honours ranking.

pub mod audit;
pub mod calendar;
pub mod community;
pub mod contact;
pub mod demand;
pub mod draft;
pub mod error;
pub mod gate;
pub mod ids;
pub mod intake;
pub mod map;
pub mod org;
pub mod person;
pub mod pii;
pub mod place;
pub mod points;
pub mod rates;
pub mod relation;
pub mod role;
pub mod routing;
pub mod tiers;

pub use error::ValidationError;
