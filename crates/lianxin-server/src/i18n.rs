//! Interface text in Chinese (first) and English.
//!
//! Pages look up every label here by key; the language comes from the `lx_lang`
//! cookie (set by the switch in the header), defaulting to Chinese. Both languages
//! sit side by side in one row, so a text cannot exist in one language only; a unit
//! test checks no row is blank, and the browser tests check the pages in both.

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn from_cookie(v: Option<&str>) -> Lang {
        match v {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }
    pub fn html_lang(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

/// (key, Chinese, English)
const TEXT: &[(&str, &str, &str)] = &[
    ("app_name", "连心", "Lianxin"),
    (
        "app_tagline",
        "基层治理与新就业群体服务平台",
        "Grassroots governance and new-employment services",
    ),
    ("nav_home", "首页", "Home"),
    ("nav_places", "地点", "Places"),
    ("nav_orgs", "组织", "Organisations"),
    ("nav_people", "人员", "People"),
    ("logout", "退出", "Log out"),
    ("login", "登录", "Log in"),
    ("login_title", "登录连心", "Log in to Lianxin"),
    ("username", "用户名", "Username"),
    ("password", "密码", "Password"),
    (
        "login_failed",
        "用户名或密码错误",
        "Wrong username or password",
    ),
    (
        "login_limited",
        "尝试次数过多，请15分钟后再试",
        "Too many attempts; try again in 15 minutes",
    ),
    (
        "demo_hint",
        "演示账号密码均为 lianxin-demo",
        "Every demo account's password is lianxin-demo",
    ),
    ("dashboard", "工作台", "Dashboard"),
    ("stat_places", "地点", "Places"),
    ("stat_orgs", "组织", "Organisations"),
    ("stat_people", "人员", "People"),
    ("stat_party_members", "党员", "Party members"),
    ("stat_grids", "网格", "Grids"),
    ("stat_households", "户", "Households"),
    (
        "chart_people_by_city",
        "各盟市人员数",
        "People per league / city",
    ),
    ("your_scope", "数据范围", "Data scope"),
    ("scope_all", "全区", "Whole region"),
    ("role", "角色", "Role"),
    ("account", "我的账户", "My account"),
    (
        "no_registry_access",
        "您的角色不查看登记数据。",
        "Your role does not view registry data.",
    ),
    ("place_tree", "地点", "Places"),
    ("search", "搜索", "Search"),
    ("search_places_hint", "名称或代码", "Name or code"),
    (
        "search_orgs_hint",
        "组织名称或代码",
        "Organisation name or code",
    ),
    ("search_people_hint", "姓名", "Name"),
    ("phone_lookup", "按手机号查找", "Find by phone number"),
    (
        "phone_lookup_hint",
        "手机号不会出现在网址中",
        "The number never appears in a URL",
    ),
    (
        "phone_in_query",
        "按手机号查找请使用下方表单，以免号码出现在网址中。",
        "To find someone by phone, use the form below so the number stays out of the URL.",
    ),
    ("children", "下级", "Below"),
    ("level", "层级", "Level"),
    ("code", "代码", "Code"),
    ("name", "名称", "Name"),
    ("kind", "类型", "Kind"),
    ("place", "地点", "Place"),
    ("phone", "手机", "Phone"),
    ("party_member", "党员", "Party member"),
    ("party_joined", "入党日期", "Joined the party"),
    ("yes", "是", "Yes"),
    ("no", "否", "No"),
    ("responsible", "包联责任人", "Responsible"),
    ("responsible_on", "日期", "On"),
    ("nobody", "暂无", "Nobody"),
    ("serves", "服务地点", "Places served"),
    ("sub_orgs", "下级组织", "Sub-organisations"),
    ("members_posts", "成员与职务", "Members and posts"),
    ("relations", "任职与关系", "Relations"),
    ("valid_from", "起", "From"),
    ("valid_to", "止", "To"),
    ("rel_member_of", "成员", "Member of"),
    ("rel_holds_post", "任职", "Holds post"),
    ("rel_assigned_to", "包联 / 负责", "Assigned to"),
    ("no_results", "没有结果", "No results"),
    ("error", "出错了", "Something went wrong"),
    (
        "error_403",
        "您无权查看此页面。",
        "You may not view this page.",
    ),
    (
        "error_404",
        "找不到该页面或记录，或不在您的数据范围内。",
        "No such page or record within your data scope.",
    ),
    ("back_home", "返回首页", "Back to home"),
    ("fictional", "演示数据均为虚构", "Demo data is fictional"),
    (
        "masked_note",
        "个人信息已脱敏显示",
        "Personal data is shown masked",
    ),
    (
        "id_card_on_file",
        "已登记身份证（仅存密钥哈希）",
        "ID card on file (keyed hash only)",
    ),
];

/// The table for one language, for templates (`{{ t.nav_home }}`).
pub fn table(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    TEXT.iter()
        .map(|(k, zh, en)| (*k, if lang == Lang::Zh { *zh } else { *en }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_both_languages_filled() {
        let mut seen = std::collections::HashSet::new();
        for (k, zh, en) in TEXT {
            assert!(seen.insert(k), "duplicate key {k}");
            assert!(
                !zh.is_empty() && !en.is_empty(),
                "{k} is missing a language"
            );
        }
        assert_eq!(table(Lang::En)["nav_home"], "Home");
        assert_eq!(table(Lang::Zh)["nav_home"], "首页");
    }
}
