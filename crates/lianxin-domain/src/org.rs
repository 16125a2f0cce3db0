//! Kinds of organisation and the rule for which kind may sit under which.
//!
//! Organisations form a tree of their own (a branch under a general branch under a
//! committee), separate from the place tree; each also lists the places it serves.

use crate::ValidationError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// 党委 (incl. 党工委 of a street)
    PartyCommittee,
    /// 党总支
    GeneralBranch,
    /// 党支部
    Branch,
    /// 行业党委, e.g. for delivery platforms
    IndustryPartyCommittee,
    /// 政府部门 / 机关单位
    GovernmentDepartment,
    /// 物业公司
    PropertyCompany,
    /// 平台企业 (Meituan, Ele.me, couriers …)
    PlatformCompany,
    /// 友好学校
    School,
    /// 友好医院
    Hospital,
    /// 联合体 / 联盟, e.g. 口岸红盾
    Alliance,
    /// Any other unit: enterprises, institutions, stations
    OtherUnit,
}

impl OrgKind {
    pub const ALL: [OrgKind; 11] = [
        OrgKind::PartyCommittee,
        OrgKind::GeneralBranch,
        OrgKind::Branch,
        OrgKind::IndustryPartyCommittee,
        OrgKind::GovernmentDepartment,
        OrgKind::PropertyCompany,
        OrgKind::PlatformCompany,
        OrgKind::School,
        OrgKind::Hospital,
        OrgKind::Alliance,
        OrgKind::OtherUnit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::PartyCommittee => "party_committee",
            OrgKind::GeneralBranch => "general_branch",
            OrgKind::Branch => "branch",
            OrgKind::IndustryPartyCommittee => "industry_party_committee",
            OrgKind::GovernmentDepartment => "government_department",
            OrgKind::PropertyCompany => "property_company",
            OrgKind::PlatformCompany => "platform_company",
            OrgKind::School => "school",
            OrgKind::Hospital => "hospital",
            OrgKind::Alliance => "alliance",
            OrgKind::OtherUnit => "other_unit",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            OrgKind::PartyCommittee => "党委",
            OrgKind::GeneralBranch => "党总支",
            OrgKind::Branch => "党支部",
            OrgKind::IndustryPartyCommittee => "行业党委",
            OrgKind::GovernmentDepartment => "政府部门",
            OrgKind::PropertyCompany => "物业公司",
            OrgKind::PlatformCompany => "平台企业",
            OrgKind::School => "学校",
            OrgKind::Hospital => "医院",
            OrgKind::Alliance => "联合体",
            OrgKind::OtherUnit => "其他单位",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            OrgKind::PartyCommittee => "Party committee",
            OrgKind::GeneralBranch => "General branch",
            OrgKind::Branch => "Branch",
            OrgKind::IndustryPartyCommittee => "Industry party committee",
            OrgKind::GovernmentDepartment => "Government department",
            OrgKind::PropertyCompany => "Property company",
            OrgKind::PlatformCompany => "Platform company",
            OrgKind::School => "School",
            OrgKind::Hospital => "Hospital",
            OrgKind::Alliance => "Alliance",
            OrgKind::OtherUnit => "Other unit",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        OrgKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| {
                ValidationError::new(
                    "kind",
                    "invalid_kind",
                    "kind must be one of party_committee, general_branch, branch, industry_party_committee, government_department, property_company, platform_company, school, hospital, alliance, other_unit",
                )
            })
    }

    pub fn is_party_organisation(self) -> bool {
        matches!(
            self,
            OrgKind::PartyCommittee
                | OrgKind::GeneralBranch
                | OrgKind::Branch
                | OrgKind::IndustryPartyCommittee
        )
    }

    /// Whether an organisation of this kind may have a parent of kind `parent`.
    /// Party organisations nest only under party organisations (a branch never sits
    /// under a general branch's branch); other units may sit anywhere, and an alliance
    /// links units rather than owning them, so it is its own root.
    pub fn may_sit_under(self, parent: OrgKind) -> bool {
        match self {
            OrgKind::Alliance => false,
            OrgKind::PartyCommittee | OrgKind::IndustryPartyCommittee => {
                matches!(
                    parent,
                    OrgKind::PartyCommittee | OrgKind::IndustryPartyCommittee
                )
            }
            OrgKind::GeneralBranch => {
                matches!(
                    parent,
                    OrgKind::PartyCommittee | OrgKind::IndustryPartyCommittee
                )
            }
            OrgKind::Branch => parent.is_party_organisation() && parent != OrgKind::Branch,
            _ => parent != OrgKind::Branch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in OrgKind::ALL {
            assert_eq!(OrgKind::parse(k.as_str()).unwrap(), k);
        }
        assert!(OrgKind::parse("club").is_err());
    }

    #[test]
    fn nesting_rules() {
        assert!(OrgKind::Branch.may_sit_under(OrgKind::GeneralBranch));
        assert!(!OrgKind::Branch.may_sit_under(OrgKind::Branch));
        assert!(!OrgKind::PartyCommittee.may_sit_under(OrgKind::Branch));
        assert!(!OrgKind::Alliance.may_sit_under(OrgKind::PartyCommittee));
        assert!(OrgKind::PropertyCompany.may_sit_under(OrgKind::GovernmentDepartment));
    }
}
