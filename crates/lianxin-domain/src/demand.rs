//! The demand closed loop (收集—研判—落实—反馈) as a state machine.
//!
//! A demand is received by a unit, assessed (研判: category, urgency, the
//! responsible unit, a deadline), assigned to a handling unit, worked on, answered
//! (答复) and rated by the reporter (满意 / 基本满意 / 不满意). A satisfied or basically
//! satisfied rating closes it; 不满意 reopens it with the same handler. Side paths:
//! the handler may return it (退回) to the accountable unit; the accountable unit may
//! transfer it (转办) to another unit, merge it into a duplicate, or reject it.
//!
//! First-receiver responsibility (首接负责制): the unit that first accepts a demand
//! is its *owner* and stays accountable until another unit accepts a transfer; a
//! proposed transfer changes nothing until then.
//!
//! This module decides only what may happen and what the new state is. Deadlines are
//! computed by the caller from the time limits (see `calendar`) and passed in; the
//! machine refuses one that is already past. Every state that is not terminal has an
//! owner and a deadline by construction, and a handler exactly while work is with one:
//! the property tests below drive random command sequences and check that after
//! every accepted step.

use crate::calendar::TimeLimit;
use crate::ValidationError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A responsible unit: the id of an organisation.
pub type UnitId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Received,
    Assessed,
    Assigned,
    InProgress,
    Answered,
    Closed,
    Rejected,
    Merged,
}

impl Status {
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Closed | Status::Rejected | Status::Merged)
    }

    /// Whether a handling unit holds the work in this state.
    pub fn has_handler(self) -> bool {
        matches!(
            self,
            Status::Assigned | Status::InProgress | Status::Answered
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Assessed => "assessed",
            Status::Assigned => "assigned",
            Status::InProgress => "in_progress",
            Status::Answered => "answered",
            Status::Closed => "closed",
            Status::Rejected => "rejected",
            Status::Merged => "merged",
        }
    }

    pub const ALL: [Status; 8] = [
        Status::Received,
        Status::Assessed,
        Status::Assigned,
        Status::InProgress,
        Status::Answered,
        Status::Closed,
        Status::Rejected,
        Status::Merged,
    ];

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Status::ALL
            .into_iter()
            .find(|v| v.as_str() == s.trim())
            .ok_or_else(|| {
                ValidationError::new(
                    "status",
                    "invalid_status",
                    "status must be received, assessed, assigned, in_progress, answered, closed, rejected or merged",
                )
            })
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Status::Received => "Received",
            Status::Assessed => "Assessed",
            Status::Assigned => "Assigned",
            Status::InProgress => "In progress",
            Status::Answered => "Answered",
            Status::Closed => "Closed",
            Status::Rejected => "Rejected",
            Status::Merged => "Merged",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Status::Received => "已受理",
            Status::Assessed => "已研判",
            Status::Assigned => "已派单",
            Status::InProgress => "办理中",
            Status::Answered => "已答复",
            Status::Closed => "已办结",
            Status::Rejected => "不予受理",
            Status::Merged => "已合并",
        }
    }
}

/// How urgent a demand is, as set at assessment (研判).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// 紧急: danger to people or property.
    Emergency,
    /// 一般: the ordinary case.
    Ordinary,
    /// 复杂: needs several units or a site survey.
    Complex,
}

impl Urgency {
    pub const ALL: [Urgency; 3] = [Urgency::Emergency, Urgency::Ordinary, Urgency::Complex];

    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Emergency => "emergency",
            Urgency::Ordinary => "ordinary",
            Urgency::Complex => "complex",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Urgency::Emergency => "紧急",
            Urgency::Ordinary => "一般",
            Urgency::Complex => "复杂",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Urgency::ALL
            .into_iter()
            .find(|u| u.as_str() == s.trim())
            .ok_or_else(|| {
                ValidationError::new(
                    "urgency",
                    "invalid_urgency",
                    "urgency must be emergency, ordinary or complex",
                )
            })
    }
}

/// The time limits of answering, per urgency, with overrides per category: the
/// commonly cited 2 hours for emergencies, 7 working days for ordinary demands and 15
/// for complex ones, and 24 hours for water, power, gas and heating (utilities).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeLimitPolicy {
    defaults: [(Urgency, TimeLimit); 3],
    overrides: Vec<(String, Urgency, TimeLimit)>,
}

impl Default for TimeLimitPolicy {
    fn default() -> Self {
        let limit = |s: &str| TimeLimit::parse(s).expect("built-in limits are valid");
        TimeLimitPolicy {
            defaults: [
                (Urgency::Emergency, limit("2h")),
                (Urgency::Ordinary, limit("7wd")),
                (Urgency::Complex, limit("15wd")),
            ],
            overrides: vec![("utilities".into(), Urgency::Ordinary, limit("24h"))],
        }
    }
}

impl TimeLimitPolicy {
    /// Sets the limit for one category and urgency (replacing an earlier one).
    pub fn set(&mut self, category: &str, urgency: Urgency, limit: TimeLimit) {
        self.overrides
            .retain(|(c, u, _)| !(c == category && *u == urgency));
        self.overrides.push((category.to_string(), urgency, limit));
    }

    /// The limits set per category: (category, urgency, limit).
    pub fn overrides(&self) -> &[(String, Urgency, TimeLimit)] {
        &self.overrides
    }

    /// Sets the default limit for an urgency.
    pub fn set_default(&mut self, urgency: Urgency, limit: TimeLimit) {
        for (u, l) in self.defaults.iter_mut() {
            if *u == urgency {
                *l = limit;
            }
        }
    }

    /// The limit for a demand of `category` assessed as `urgency`: the category's own
    /// limit if one is set, else the urgency's default.
    pub fn limit(&self, category: &str, urgency: Urgency) -> TimeLimit {
        self.overrides
            .iter()
            .find(|(c, u, _)| c == category && *u == urgency)
            .map(|(_, _, l)| *l)
            .unwrap_or_else(|| {
                self.defaults
                    .iter()
                    .find(|(u, _)| *u == urgency)
                    .map(|(_, l)| *l)
                    .expect("every urgency has a default")
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    /// 满意
    Satisfied,
    /// 基本满意
    BasicallySatisfied,
    /// 不满意
    Unsatisfied,
}

/// The loop-relevant state of one demand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopState {
    pub status: Status,
    /// The accountable unit (首接负责).
    pub owner: UnitId,
    /// The unit doing the work, while it is with one.
    pub handler: Option<UnitId>,
    /// A proposed transfer (转办) waiting for the target unit to accept.
    pub transfer_to: Option<UnitId>,
    /// When the current step is due.
    pub deadline: DateTime<Utc>,
    pub rating: Option<Rating>,
    /// How many times a 不满意 rating reopened it.
    pub reopened: u32,
}

/// Who asks for a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// Staff acting for a unit.
    Unit(UnitId),
    /// The resident who raised the demand.
    Reporter,
}

/// The steps of the loop. Deadlines are for the step that follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// 研判: the owner confirms it is responsible and sets the deadline to assign.
    Assess { deadline: DateTime<Utc> },
    /// 派单: the owner gives the work to a handling unit (possibly itself).
    Assign {
        unit: UnitId,
        deadline: DateTime<Utc>,
    },
    /// The handler starts work.
    Start,
    /// 答复: the handler answers the reporter; the deadline is for the rating.
    Answer { rating_deadline: DateTime<Utc> },
    /// The reporter rates the answer; 不满意 needs a new deadline for the rework.
    Rate {
        rating: Rating,
        rework_deadline: Option<DateTime<Utc>>,
    },
    /// Closes an answered demand the reporter did not rate in time.
    CloseUnrated,
    /// 退回: the handler gives the work back to the owner.
    Return { deadline: DateTime<Utc> },
    /// 转办: the owner proposes another unit.
    Transfer { to: UnitId },
    /// The proposed unit accepts and becomes the owner.
    AcceptTransfer { deadline: DateTime<Utc> },
    /// The proposed unit declines; nothing changes.
    DeclineTransfer,
    /// Merged into a duplicate.
    Merge,
    /// 不予受理, with a reason recorded by the caller.
    Reject,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Assess { .. } => "assess",
            Command::Assign { .. } => "assign",
            Command::Start => "start",
            Command::Answer { .. } => "answer",
            Command::Rate { .. } => "rate",
            Command::CloseUnrated => "close_unrated",
            Command::Return { .. } => "return",
            Command::Transfer { .. } => "transfer",
            Command::AcceptTransfer { .. } => "accept_transfer",
            Command::DeclineTransfer => "decline_transfer",
            Command::Merge => "merge",
            Command::Reject => "reject",
        }
    }

    fn deadline(&self) -> Option<DateTime<Utc>> {
        match self {
            Command::Assess { deadline }
            | Command::Assign { deadline, .. }
            | Command::Return { deadline }
            | Command::AcceptTransfer { deadline }
            | Command::Answer {
                rating_deadline: deadline,
            } => Some(*deadline),
            Command::Rate {
                rework_deadline, ..
            } => *rework_deadline,
            _ => None,
        }
    }
}

/// Why a step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoopError {
    #[error("{command} is not allowed while the demand is {status}")]
    WrongState {
        command: &'static str,
        status: &'static str,
    },
    #[error("{command} may only be done by {who}")]
    NotYours {
        command: &'static str,
        who: &'static str,
    },
    #[error("the deadline is already past")]
    DeadlineInPast,
    #[error("{0}")]
    Invalid(&'static str),
}

impl From<LoopError> for ValidationError {
    fn from(e: LoopError) -> Self {
        let code = match e {
            LoopError::WrongState { .. } => "wrong_state",
            LoopError::NotYours { .. } => "not_yours",
            LoopError::DeadlineInPast => "deadline_in_past",
            LoopError::Invalid(_) => "invalid",
        };
        let field = if e == LoopError::DeadlineInPast {
            "deadline"
        } else {
            "action"
        };
        ValidationError::new(field, code, e.to_string())
    }
}

impl LoopState {
    /// A new demand, accepted by `owner`, due for assessment by `deadline`.
    pub fn received(
        owner: UnitId,
        deadline: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Self, LoopError> {
        if deadline <= now {
            return Err(LoopError::DeadlineInPast);
        }
        Ok(LoopState {
            status: Status::Received,
            owner,
            handler: None,
            transfer_to: None,
            deadline,
            rating: None,
            reopened: 0,
        })
    }

    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        !self.status.is_terminal() && crate::calendar::is_overdue(now, self.deadline)
    }

    /// Decides one step. The state is unchanged on error.
    pub fn apply(
        &self,
        cmd: &Command,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<LoopState, LoopError> {
        use Status::*;
        let name = cmd.name();
        let wrong = || LoopError::WrongState {
            command: name,
            status: self.status.as_str(),
        };
        if self.status.is_terminal() {
            return Err(wrong());
        }
        if let Some(d) = cmd.deadline() {
            if d <= now {
                return Err(LoopError::DeadlineInPast);
            }
        }
        let is_owner = actor == Actor::Unit(self.owner);
        let is_handler = self.handler.is_some_and(|h| actor == Actor::Unit(h));
        let need = |ok: bool, who: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(LoopError::NotYours { command: name, who })
            }
        };
        let mut next = self.clone();
        match cmd {
            Command::Assess { deadline } => {
                need(is_owner, "the accountable unit")?;
                if !matches!(self.status, Received | Assessed) {
                    return Err(wrong());
                }
                next.status = Assessed;
                next.deadline = *deadline;
            }
            Command::Assign { unit, deadline } => {
                need(is_owner, "the accountable unit")?;
                // While a transfer is proposed the work waits for the other unit's answer.
                if self.status != Assessed || self.transfer_to.is_some() {
                    return Err(wrong());
                }
                next.status = Assigned;
                next.handler = Some(*unit);
                next.deadline = *deadline;
            }
            // For the handler's steps the state is checked first: before assignment
            // there is no handler, and "not allowed while assessed" says why.
            Command::Start => {
                if self.status != Assigned {
                    return Err(wrong());
                }
                need(is_handler, "the handling unit")?;
                next.status = InProgress;
            }
            Command::Answer { rating_deadline } => {
                if !matches!(self.status, Assigned | InProgress) {
                    return Err(wrong());
                }
                need(is_handler, "the handling unit")?;
                next.status = Answered;
                next.deadline = *rating_deadline;
            }
            Command::Rate {
                rating,
                rework_deadline,
            } => {
                need(actor == Actor::Reporter, "the reporter")?;
                if self.status != Answered {
                    return Err(wrong());
                }
                next.rating = Some(*rating);
                match rating {
                    Rating::Unsatisfied => {
                        let deadline = rework_deadline
                            .ok_or(LoopError::Invalid("a reopened demand needs a new deadline"))?;
                        next.status = Assigned;
                        next.deadline = deadline;
                        next.reopened += 1;
                    }
                    _ => {
                        next.status = Closed;
                        next.handler = None;
                        next.transfer_to = None;
                    }
                }
            }
            Command::CloseUnrated => {
                need(is_owner, "the accountable unit")?;
                if self.status != Answered || !crate::calendar::is_overdue(now, self.deadline) {
                    return Err(wrong());
                }
                next.status = Closed;
                next.handler = None;
                next.transfer_to = None;
            }
            Command::Return { deadline } => {
                if !matches!(self.status, Assigned | InProgress) {
                    return Err(wrong());
                }
                need(is_handler, "the handling unit")?;
                next.status = Assessed;
                next.handler = None;
                next.deadline = *deadline;
            }
            Command::Transfer { to } => {
                need(is_owner, "the accountable unit")?;
                if *to == self.owner {
                    return Err(LoopError::Invalid(
                        "a demand cannot be transferred to its own unit",
                    ));
                }
                if !matches!(self.status, Received | Assessed) || self.transfer_to.is_some() {
                    return Err(wrong());
                }
                next.transfer_to = Some(*to);
            }
            Command::AcceptTransfer { deadline } => {
                let Some(to) = self.transfer_to else {
                    return Err(wrong());
                };
                need(actor == Actor::Unit(to), "the unit it was transferred to")?;
                next.owner = to;
                next.transfer_to = None;
                next.status = Received;
                next.deadline = *deadline;
            }
            Command::DeclineTransfer => {
                let Some(to) = self.transfer_to else {
                    return Err(wrong());
                };
                need(actor == Actor::Unit(to), "the unit it was transferred to")?;
                next.transfer_to = None;
            }
            Command::Merge | Command::Reject => {
                need(is_owner, "the accountable unit")?;
                if !matches!(self.status, Received | Assessed) {
                    return Err(wrong());
                }
                next.status = if matches!(cmd, Command::Merge) {
                    Merged
                } else {
                    Rejected
                };
                next.transfer_to = None;
            }
        }
        Ok(next)
    }

    /// The invariants every reachable state keeps (checked by the property tests).
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        if self.status.has_handler() != self.handler.is_some() {
            return Err("a handler is set exactly while the work is with one");
        }
        if self.transfer_to == Some(self.owner) {
            return Err("a demand is never transferred to its own owner");
        }
        if self.transfer_to.is_some() && !matches!(self.status, Status::Received | Status::Assessed)
        {
            return Err("a transfer is only pending before assignment");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-09-25T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_main_path_and_a_reopen() {
        let now = t0();
        let later = now + Duration::days(3);
        let s = LoopState::received(1, later, now).unwrap();
        let s = s
            .apply(&Command::Assess { deadline: later }, Actor::Unit(1), now)
            .unwrap();
        let s = s
            .apply(
                &Command::Assign {
                    unit: 2,
                    deadline: later,
                },
                Actor::Unit(1),
                now,
            )
            .unwrap();
        assert_eq!(
            s.apply(&Command::Start, Actor::Unit(1), now),
            Err(LoopError::NotYours {
                command: "start",
                who: "the handling unit"
            })
        );
        let s = s.apply(&Command::Start, Actor::Unit(2), now).unwrap();
        let s = s
            .apply(
                &Command::Answer {
                    rating_deadline: later,
                },
                Actor::Unit(2),
                now,
            )
            .unwrap();
        assert!(s
            .apply(
                &Command::Rate {
                    rating: Rating::Satisfied,
                    rework_deadline: None
                },
                Actor::Unit(1),
                now
            )
            .is_err());
        let re = s
            .apply(
                &Command::Rate {
                    rating: Rating::Unsatisfied,
                    rework_deadline: Some(later),
                },
                Actor::Reporter,
                now,
            )
            .unwrap();
        assert_eq!(
            (re.status, re.handler, re.reopened),
            (Status::Assigned, Some(2), 1)
        );
        let s = re
            .apply(
                &Command::Answer {
                    rating_deadline: later,
                },
                Actor::Unit(2),
                now,
            )
            .unwrap();
        let done = s
            .apply(
                &Command::Rate {
                    rating: Rating::BasicallySatisfied,
                    rework_deadline: None,
                },
                Actor::Reporter,
                now,
            )
            .unwrap();
        assert_eq!(done.status, Status::Closed);
        assert!(
            done.apply(&Command::Start, Actor::Unit(2), now).is_err(),
            "terminal states accept nothing"
        );
    }

    #[test]
    fn an_unrated_rework_closes_keeping_the_last_rating() {
        let now = t0();
        let soon = now + Duration::hours(1);
        let s = LoopState {
            status: Status::Answered,
            handler: Some(2),
            ..LoopState::received(1, soon, now).unwrap()
        };
        let s = s
            .apply(
                &Command::Rate {
                    rating: Rating::Unsatisfied,
                    rework_deadline: Some(soon),
                },
                Actor::Reporter,
                now,
            )
            .unwrap();
        let s = s
            .apply(
                &Command::Answer {
                    rating_deadline: soon,
                },
                Actor::Unit(2),
                now,
            )
            .unwrap();
        let closed = s
            .apply(&Command::CloseUnrated, Actor::Unit(1), soon)
            .unwrap();
        assert_eq!(
            (closed.status, closed.rating),
            (Status::Closed, Some(Rating::Unsatisfied))
        );
        assert!(closed.check_invariants().is_ok());
    }

    #[test]
    fn time_limits_by_urgency_and_category() {
        let mut p = TimeLimitPolicy::default();
        assert_eq!(p.limit("road", Urgency::Emergency).to_string(), "2h");
        assert_eq!(p.limit("road", Urgency::Ordinary).to_string(), "7wd");
        assert_eq!(p.limit("utilities", Urgency::Ordinary).to_string(), "24h");
        assert_eq!(p.limit("utilities", Urgency::Complex).to_string(), "15wd");
        p.set("road", Urgency::Complex, TimeLimit::parse("10wd").unwrap());
        p.set("road", Urgency::Complex, TimeLimit::parse("12wd").unwrap());
        assert_eq!(p.limit("road", Urgency::Complex).to_string(), "12wd");
        assert_eq!(Urgency::parse(" complex").unwrap(), Urgency::Complex);
        assert_eq!(Urgency::parse("soon").unwrap_err().field, "urgency");
    }

    #[test]
    fn first_receiver_stays_accountable_until_a_transfer_is_accepted() {
        let now = t0();
        let later = now + Duration::days(1);
        let s = LoopState::received(1, later, now).unwrap();
        let s = s
            .apply(&Command::Transfer { to: 5 }, Actor::Unit(1), now)
            .unwrap();
        assert_eq!(s.owner, 1, "a proposal changes nothing");
        assert!(s
            .apply(
                &Command::AcceptTransfer { deadline: later },
                Actor::Unit(6),
                now
            )
            .is_err());
        let declined = s
            .apply(&Command::DeclineTransfer, Actor::Unit(5), now)
            .unwrap();
        assert_eq!((declined.owner, declined.transfer_to), (1, None));
        let taken = s
            .apply(
                &Command::AcceptTransfer { deadline: later },
                Actor::Unit(5),
                now,
            )
            .unwrap();
        assert_eq!(
            (taken.owner, taken.status, taken.transfer_to),
            (5, Status::Received, None)
        );
        assert!(taken
            .apply(&Command::Assess { deadline: later }, Actor::Unit(1), now)
            .is_err());
    }

    #[test]
    fn past_deadlines_and_wrong_states_are_refused() {
        let now = t0();
        assert_eq!(
            LoopState::received(1, now, now),
            Err(LoopError::DeadlineInPast)
        );
        let s = LoopState::received(1, now + Duration::hours(2), now).unwrap();
        assert_eq!(
            s.apply(
                &Command::Assess {
                    deadline: now - Duration::seconds(1)
                },
                Actor::Unit(1),
                now
            ),
            Err(LoopError::DeadlineInPast)
        );
        // Starting before assignment is the wrong state, whoever asks.
        assert!(matches!(
            s.apply(&Command::Start, Actor::Unit(1), now),
            Err(LoopError::WrongState { .. })
        ));
        assert!(matches!(
            s.apply(
                &Command::Rate {
                    rating: Rating::Satisfied,
                    rework_deadline: None
                },
                Actor::Reporter,
                now
            ),
            Err(LoopError::WrongState { .. })
        ));
        let answered = LoopState {
            status: Status::Answered,
            handler: Some(2),
            ..s.clone()
        };
        // Closing unrated waits for the rating deadline.
        assert!(answered
            .apply(&Command::CloseUnrated, Actor::Unit(1), now)
            .is_err());
        let after = now + Duration::hours(3);
        assert_eq!(
            answered
                .apply(&Command::CloseUnrated, Actor::Unit(1), after)
                .unwrap()
                .status,
            Status::Closed
        );
        assert!(answered.is_overdue(after) && !answered.is_overdue(now));
    }

    fn command() -> impl Strategy<Value = (Command, Actor, i64)> {
        let unit = 1i64..5;
        let actor = prop_oneof![unit.clone().prop_map(Actor::Unit), Just(Actor::Reporter)];
        let rating = prop_oneof![
            Just(Rating::Satisfied),
            Just(Rating::BasicallySatisfied),
            Just(Rating::Unsatisfied)
        ];
        let hours = -5i64..200;
        let cmd = (0u8..12, unit, rating, hours.clone(), proptest::bool::ANY).prop_map(
            |(k, u, r, h, some)| {
                let d = t0() + Duration::hours(h);
                match k {
                    0 => Command::Assess { deadline: d },
                    1 => Command::Assign {
                        unit: u,
                        deadline: d,
                    },
                    2 => Command::Start,
                    3 => Command::Answer { rating_deadline: d },
                    4 => Command::Rate {
                        rating: r,
                        rework_deadline: some.then_some(d),
                    },
                    5 => Command::CloseUnrated,
                    6 => Command::Return { deadline: d },
                    7 => Command::Transfer { to: u },
                    8 => Command::AcceptTransfer { deadline: d },
                    9 => Command::DeclineTransfer,
                    10 => Command::Merge,
                    _ => Command::Reject,
                }
            },
        );
        (cmd, actor, 0i64..300)
    }

    proptest! {
        // Deep states are rare in random walks; many cases keep them covered.
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// No reachable state leaves a demand without an owner, a deadline that was
        /// in the future when it was set, or a handler while one is needed.
        #[test]
        fn every_reachable_state_keeps_the_invariants(steps in proptest::collection::vec(command(), 1..60)) {
            let mut s = LoopState::received(1, t0() + Duration::hours(10), t0()).unwrap();
            let mut clock = t0();
            for (cmd, actor, advance_min) in steps {
                clock += Duration::minutes(advance_min);
                let before = s.clone();
                match s.apply(&cmd, actor, clock) {
                    Ok(next) => {
                        prop_assert!(next.check_invariants().is_ok(), "{:?} after {:?}", next, cmd);
                        if next.deadline != before.deadline {
                            prop_assert!(next.deadline > clock, "a new deadline is in the future");
                        }
                        if next.owner != before.owner {
                            prop_assert!(matches!(cmd, Command::AcceptTransfer { .. }), "only an accepted transfer changes the owner");
                            prop_assert_eq!(Some(next.owner), before.transfer_to);
                        }
                        prop_assert!(!before.status.is_terminal());
                        // 不满意 always reopens; a demand closes on it only later, unrated.
                        if let Command::Rate { rating: Rating::Unsatisfied, .. } = cmd {
                            prop_assert_eq!(next.status, Status::Assigned);
                        }
                        s = next;
                    }
                    Err(_) => prop_assert_eq!(&s, &before),
                }
            }
        }
    }
}
