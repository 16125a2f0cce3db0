//! Account roles, what each may do, and data scopes.
//!
//! A role says *what* an account may do; its data scope says *where*: an account
//! scoped to a street sees only that street's subtree of places and the
//! organisations and people attached to it. Both checks are pure functions here so
//! every endpoint asks the same question the same way.

use crate::ValidationError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Official,
    CommunityWorker,
    GridWorker,
    UnitStaff,
    Resident,
    Rider,
    GateDevice,
}

/// Things an account may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See places, organisations and people (masked) in scope.
    ReadRegistry,
    /// Create and change places, organisations, people and relations in scope.
    WriteRegistry,
    /// Manage accounts and API tokens.
    ManageAccounts,
    /// Read the audit trail.
    ReadAudit,
    /// See demands and the three rates in scope.
    ReadDemands,
    /// Take steps on demands for the units in scope (研判, 派单, 答复, 转办 …).
    HandleDemands,
    /// Edit categories, routing rules, time limits and holiday calendars.
    ManageLoop,
    /// See contact points, visits, coverage, needs and tiers in scope.
    ReadGovernance,
    /// Record visits (officials at their points, workers at households).
    RecordVisits,
    /// Keep a community's grids, households, 双进 registrations and needs lists.
    ManageCommunity,
    /// The organisation department's work: points, links, re-matches, rules, tiers.
    ManageGovernance,
    /// See the rider gates' entries and exits, and their statistics, for compounds in
    /// scope (or served by an organisation in scope: the property company).
    ReadGateLog,
    /// Keep the rider-friendly map: stations, malls, hot spots, outlines.
    ManageMap,
    /// See the points ledger: rules, catalogue, stock, awards, balances, honours.
    ReadRewards,
    /// Record awards (a completed task, a volunteer hour, a training attended).
    AwardPoints,
    /// Keep the points scheme: rules, catalogue and stock, corrections, the issuing
    /// organisation, and the year's honours.
    ManageRewards,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Admin,
        Role::Official,
        Role::CommunityWorker,
        Role::GridWorker,
        Role::UnitStaff,
        Role::Resident,
        Role::Rider,
        Role::GateDevice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Official => "official",
            Role::CommunityWorker => "community_worker",
            Role::GridWorker => "grid_worker",
            Role::UnitStaff => "unit_staff",
            Role::Resident => "resident",
            Role::Rider => "rider",
            Role::GateDevice => "gate_device",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Role::Admin => "系统管理员",
            Role::Official => "领导干部",
            Role::CommunityWorker => "社区工作者",
            Role::GridWorker => "网格员",
            Role::UnitStaff => "单位工作人员",
            Role::Resident => "居民",
            Role::Rider => "骑手",
            Role::GateDevice => "门禁设备",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Role::Admin => "Administrator",
            Role::Official => "Official",
            Role::CommunityWorker => "Community worker",
            Role::GridWorker => "Grid worker",
            Role::UnitStaff => "Unit staff",
            Role::Resident => "Resident",
            Role::Rider => "Rider",
            Role::GateDevice => "Gate device",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| {
                ValidationError::new(
                    "role",
                    "invalid_role",
                    "role must be one of admin, official, community_worker, grid_worker, unit_staff, resident, rider, gate_device",
                )
            })
    }

    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Official => matches!(
                permission,
                ReadRegistry
                    | ReadDemands
                    | HandleDemands
                    | ReadGovernance
                    | RecordVisits
                    | ReadGateLog
                    | ReadRewards
            ),
            Role::UnitStaff => {
                matches!(
                    permission,
                    ReadRegistry
                        | ReadDemands
                        | HandleDemands
                        | ReadGateLog
                        | ReadRewards
                        | AwardPoints
                )
            }
            Role::CommunityWorker | Role::GridWorker => matches!(
                permission,
                ReadRegistry
                    | WriteRegistry
                    | ReadDemands
                    | HandleDemands
                    | ReadGovernance
                    | RecordVisits
                    | ManageCommunity
                    | ReadGateLog
                    | ReadRewards
                    | AwardPoints
            ),
            Role::Resident | Role::Rider | Role::GateDevice => false,
        }
    }
}

/// Where an account may look: a subtree of places (by materialised path) and a
/// subtree of organisations. `None` on either side means the whole tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataScope {
    pub place_path: Option<String>,
    pub org_path: Option<String>,
}

impl DataScope {
    pub fn everything() -> Self {
        Self::default()
    }

    pub fn allows_place(&self, place_path: &str) -> bool {
        self.place_path
            .as_deref()
            .is_none_or(|scope| place_path.starts_with(scope))
    }

    /// An organisation is in scope when it is inside the org subtree, or when it
    /// serves a place inside the place subtree (`served_place_paths`).
    pub fn allows_org<'a>(
        &self,
        org_path: &str,
        mut served_place_paths: impl Iterator<Item = &'a str>,
    ) -> bool {
        if self.place_path.is_none() && self.org_path.is_none() {
            return true;
        }
        if let Some(scope) = &self.org_path {
            if org_path.starts_with(scope.as_str()) {
                return true;
            }
        }
        match &self.place_path {
            Some(scope) => served_place_paths.any(|p| p.starts_with(scope.as_str())),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_permissions() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).unwrap(), r);
        }
        assert!(Role::Admin.allows(Permission::ManageAccounts));
        assert!(!Role::Official.allows(Permission::WriteRegistry));
        assert!(Role::CommunityWorker.allows(Permission::WriteRegistry));
        assert!(!Role::Rider.allows(Permission::ReadRegistry));
        assert!(Role::UnitStaff.allows(Permission::HandleDemands));
        assert!(!Role::Resident.allows(Permission::ReadDemands));
        assert!(!Role::Official.allows(Permission::ManageLoop));
        assert!(Role::Official.allows(Permission::RecordVisits));
        assert!(!Role::Official.allows(Permission::ManageGovernance));
        assert!(Role::GridWorker.allows(Permission::ManageCommunity));
        assert!(!Role::UnitStaff.allows(Permission::ReadGovernance));
    }

    #[test]
    fn scope_is_a_path_prefix() {
        let scope = DataScope {
            place_path: Some("/150000/150200/150207/150207.BYXL/".into()),
            org_path: None,
        };
        assert!(scope.allows_place("/150000/150200/150207/150207.BYXL/150207.BYXL.KY/"));
        assert!(!scope.allows_place("/150000/150200/150207/150207.SH/"));
        // A sibling whose code shares a prefix is not inside: paths end in a slash.
        assert!(!scope.allows_place("/150000/150200/150207/150207.BYXLX/"));
        assert!(DataScope::everything().allows_place("/anything/"));
    }

    #[test]
    fn org_scope_by_served_place() {
        let scope = DataScope {
            place_path: Some("/150000/150200/".into()),
            org_path: None,
        };
        assert!(scope.allows_org("/9/", ["/150000/150200/150207/"].into_iter()));
        assert!(!scope.allows_org("/9/", ["/150000/150400/"].into_iter()));
    }
}
