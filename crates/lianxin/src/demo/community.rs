//! The demo's community work under 双进双服务 (M15): the generated households are put
//! in their grids, party members living in 开元社区 register with it (with skills and
//! employers from `world.toml`), two unit party organisations report to it, members
//! visit households this quarter, and the needs list holds open, claimed and done
//! needs. All of it ILLUSTRATIVE: the article gives the mechanism and the
//! 锡林郭勒 figures (653 organisations, 6750 members), not these people.

use anyhow::{Context, Result};
use chrono::NaiveDate;
use lianxin_domain::community::{Quarter, RegistrationKind};
use lianxin_domain::contact::VisitKind;
use lianxin_domain::place::PlaceLevel;
use lianxin_domain::role::DataScope;
use lianxin_store::audit::Actor;
use lianxin_store::contact::NewVisit;
use lianxin_store::grids::{HouseholdRow, NewNeed, NewRegistration};
use lianxin_store::Store;

const KY: &str = "150207.BYXL.KY";

/// Employers of the registered members: organisations of `world.toml`.
const EMPLOYERS: [&str; 6] = ["JY-SWJ", "JY-ZF", "JY-ZZB", "JY-RD", "PT-MT", "PT-SF"];

const SKILLS: [&str; 10] = [
    "法律咨询",
    "水电维修",
    "心理疏导",
    "助老助残",
    "政策宣讲",
    "医疗保健",
    "家电维修",
    "文体活动",
    "电商培训",
    "四点半课堂",
];

/// (title, detail, skill, grid segment or "", what happens: 0 open, 1 claimed, 2 done)
const NEEDS: [(&str, &str, &str, &str, u8); 8] = [
    (
        "独居老人家中水管漏水",
        "1号楼2单元，老人行动不便",
        "水电维修",
        "G01",
        2,
    ),
    ("楼道声控灯不亮", "3号楼各层", "水电维修", "G02", 2),
    ("邻里宅基地纠纷咨询", "需要法律意见", "法律咨询", "", 2),
    (
        "四点半课堂辅导志愿者",
        "周二、周四下午",
        "四点半课堂",
        "",
        1,
    ),
    ("空巢老人陪伴聊天", "每周一次", "心理疏导", "G01", 1),
    ("医保政策讲解", "社区活动室", "政策宣讲", "", 0),
    ("老人智能手机使用培训", "10人左右", "电商培训", "G02", 0),
    ("残疾人家庭助浴", "4号楼", "助老助残", "G02", 0),
];

/// Loads the community work. Runs after the world (places, people, organisations)
/// and needs nothing else.
pub async fn load(store: &Store) -> Result<()> {
    let actor = Actor::system("demo");
    let all = DataScope::everything();
    let today = lianxin_domain::calendar::local_day(chrono::Utc::now());
    let since: NaiveDate = "2025-01-01".parse()?;

    // Every generated household joins the grid it was built in.
    let areas = store.community_places(&all).await?;
    let mut rows = Vec::new();
    let mut households_of: Vec<(String, Vec<String>)> = Vec::new();
    for grid in areas.iter().filter(|a| a.level == PlaceLevel::Grid) {
        let mut codes = Vec::new();
        for (building, _) in store.place_children(Some(grid.id), &all).await? {
            for (h, _) in store.place_children(Some(building.id), &all).await? {
                if h.level == PlaceLevel::Household {
                    codes.push(h.code.clone());
                    rows.push(HouseholdRow {
                        household_code: h.code,
                        grid_code: grid.code.clone(),
                        valid_from: since,
                    });
                }
            }
        }
        households_of.push((grid.code.clone(), codes));
    }
    store
        .import_grid_households(&actor, &rows, |_| {})
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("putting the demo households in their grids")?;

    // About twenty party members of 开元社区 register with it, each in the grid they
    // live in (or, living outside the buildings, a grid in turn).
    let ky = store.place_by_code(KY).await?.context("开元社区")?;
    let ky_grids: Vec<String> = households_of
        .iter()
        .map(|(g, _)| g.clone())
        .filter(|g| g.starts_with(&format!("{KY}.")))
        .collect();
    let residents = store
        .search_people(
            "",
            None,
            &DataScope {
                place_path: Some(ky.path.clone()),
                org_path: None,
            },
            1000,
            0,
        )
        .await?;
    let mut members = Vec::new();
    for (i, p) in residents
        .iter()
        .filter(|p| p.party_member)
        .take(20)
        .enumerate()
    {
        let grid = ky_grids
            .iter()
            .find(|g| p.place_code.starts_with(&format!("{g}.")))
            .or_else(|| ky_grids.get(i % ky_grids.len().max(1)))
            .cloned();
        let skills: Vec<String> = (0..1 + i % 3)
            .map(|k| SKILLS[(i * 3 + k * 7) % SKILLS.len()].to_string())
            .collect();
        store
            .register(
                &actor,
                &all,
                &NewRegistration {
                    kind: RegistrationKind::Member,
                    person_id: Some(p.id),
                    org_code: None,
                    community_code: KY.into(),
                    grid_code: grid,
                    employer_code: Some(EMPLOYERS[i % EMPLOYERS.len()].into()),
                    skills: {
                        let mut s = skills;
                        s.dedup();
                        s
                    },
                    valid_from: "2025-03-01".parse()?,
                },
            )
            .await
            .with_context(|| format!("registering member {}", p.id))?;
        members.push(p.id);
    }
    // Two units' party organisations report to the community too (单位报到).
    for (org, skills) in [("JY-SWJ", "水电维修"), ("JY-ZF", "政策宣讲")] {
        store
            .register(
                &actor,
                &all,
                &NewRegistration {
                    kind: RegistrationKind::Org,
                    person_id: None,
                    org_code: Some(org.into()),
                    community_code: KY.into(),
                    grid_code: None,
                    employer_code: None,
                    skills: vec![skills.into()],
                    valid_from: "2025-03-01".parse()?,
                },
            )
            .await?;
    }

    // Members visit households this quarter: most of 第一网格, about half of 第二网格,
    // a few elsewhere, so the heat table has something to tell.
    let first = Quarter::containing(today).first_day();
    let span = (today - first).num_days().max(0) + 1;
    if let Some(&visitor) = members.first() {
        for (grid, codes) in &households_of {
            // 第一网格 four in five, 第二网格 one in two, elsewhere one in four.
            let visits = |i: usize| {
                if grid.ends_with("G01") {
                    !i.is_multiple_of(5)
                } else if grid.ends_with("G02") {
                    i.is_multiple_of(2)
                } else {
                    i.is_multiple_of(4)
                }
            };
            for (i, code) in codes.iter().enumerate() {
                if !visits(i) {
                    continue;
                }
                let person_id = members.get(i % members.len()).copied().unwrap_or(visitor);
                let on = first + chrono::Duration::days((i as i64 * 3) % span);
                store
                    .record_visit(
                        &actor,
                        &all,
                        &NewVisit {
                            point_id: None,
                            person_id,
                            kind: VisitKind::Household,
                            visited_on: on,
                            place_code: Some(code.clone()),
                            participants: vec![],
                            notes: "入户走访，了解家庭情况和需求".into(),
                            follow_up: None,
                            photos: vec![],
                        },
                        today,
                    )
                    .await
                    .with_context(|| format!("visiting {code}"))?;
            }
        }
    }

    // The needs list: some open, some claimed by members, some done with hours.
    for (i, (title, detail, skill, grid, stage)) in NEEDS.iter().enumerate() {
        let need = store
            .post_need(
                &actor,
                &all,
                &NewNeed {
                    community_code: KY.into(),
                    grid_code: (!grid.is_empty()).then(|| format!("{KY}.{grid}")),
                    title: (*title).into(),
                    detail: (*detail).into(),
                    skills: vec![(*skill).into()],
                },
            )
            .await?;
        if *stage == 0 || members.is_empty() {
            continue;
        }
        let member = members[(i * 7) % members.len()];
        store
            .claim_need(&actor, &all, need.id, member, today)
            .await?;
        if *stage == 2 {
            store
                .complete_need(
                    &actor,
                    &all,
                    need.id,
                    1.5 + i as f64,
                    "已上门服务，居民满意",
                    today,
                    today,
                )
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lianxin_domain::pii::PiiKey;

    /// The demo's community work loads on top of the world and gives the pages
    /// something to show: assigned households, a coloured heat table, registrations
    /// with employers, and needs at every stage.
    #[tokio::test]
    async fn loads_on_top_of_the_world() {
        let dir = lianxin_store::testing::TempDir::new("lianxin-demo-community").unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.0.join("d.db").display()))
            .await
            .unwrap();
        crate::demo::ensure_loaded(&store, &PiiKey::from_master(&[7; 32]))
            .await
            .unwrap();
        let all = DataScope::everything();
        let today = lianxin_domain::calendar::local_day(chrono::Utc::now());
        if store
            .member_registrations(&all, today, 10)
            .await
            .unwrap()
            .is_empty()
        {
            load(&store).await.unwrap();
        }
        let regs = store.member_registrations(&all, today, 100).await.unwrap();
        assert_eq!(regs.len(), 20);
        assert!(regs
            .iter()
            .all(|r| r.grid_id.is_some() && r.employer_id.is_some()));
        let cov = store
            .coverage(&all, None, Quarter::containing(today).first_day(), today)
            .await
            .unwrap();
        let ky = cov
            .communities
            .iter()
            .find(|c| c.community_code == KY)
            .unwrap();
        assert_eq!(ky.coverage.households, 48, "4 buildings of 12 households");
        assert!(ky.coverage.visited > 20 && ky.coverage.visited < 48);
        let needs = store.needs(&all, None, None, 50).await.unwrap();
        let count = |s| needs.iter().filter(|n| n.status == s).count();
        use lianxin_domain::community::NeedStatus::*;
        assert_eq!((count(Open), count(Claimed), count(Done)), (3, 2, 3));
    }
}
