//! "Where is shop X": fuzzy matching of a rider's query against the shop names of a
//! mall's directory, the way riders type on a phone.
//!
//! A name is read as a sequence of *units*: each Chinese character becomes its pinyin
//! syllable (toneless, `ü` as `v`), each run of Latin letters or digits one lowercase
//! word (`HUAWEI华为` → `huawei hua wei`). A query matches, best first:
//!
//! | kind | example | score |
//! |---|---|---|
//! | the name itself | `星巴克` → 星巴克 | 1000 |
//! | start of the name | `星巴` → 星巴克臻选 | 900 |
//! | inside the name | `巴克`, `KFC` → 肯德基KFC | 800 |
//! | the whole name in pinyin | `xingbake` | 780 |
//! | the whole name by initials | `xbk` → 星巴克, `mdl` → 麦当劳 | 760 |
//! | the whole name, initials and syllables mixed | `xingbk` | 740 |
//! | the start of the name in pinyin (prefixes of consecutive syllables) | `xingba`, `hdl` → 海底捞火锅 | 700 |
//! | same sound, other characters | `星巴可` | 650 (660 for the whole name) |
//! | pinyin from a later syllable | `bake` → 星巴克 | 600 − position |
//! | a Latin typo | `unqilo` → UNIQLO优衣库, `xingbaek` → 星巴克 | 500 − 100 × edits |
//! | the query's characters in order | `星克` → 星巴克 | 450 |
//!
//! Edits are counted with optimal string alignment (an adjacent swap is one edit), at
//! most 1 for queries of up to 5 letters and 2 beyond. Results are ranked by score,
//! then shorter name, then name, then position, so the order never depends on hashing.
//!
//! **Polyphones.** A character with several readings uses the first one in the `pinyin`
//! crate's data (the most common): `重庆` reads `zhong qing`, `银行` reads `yin xing`.
//! Shop names rarely hit this; a shop whose name does can add its pinyin as an alias
//! entry. The data is compiled into the crate, so it works offline.

use pinyin::ToPinyin;
use serde::Serialize;

/// How a query matched a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    Exact,
    Prefix,
    Substring,
    Pinyin,
    PinyinInitials,
    PinyinMixed,
    PinyinPrefix,
    Homophone,
    PinyinInside,
    Typo,
    Subsequence,
}

/// One name ready to be matched.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    /// Lowercased, without spaces and punctuation.
    text: String,
    units: Vec<String>,
    /// `units` concatenated.
    spelled: String,
    /// The Latin words alone.
    words: Vec<String>,
}

/// A match: `index` is the name's position in the list given to [`NameIndex::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    pub index: usize,
    pub score: u32,
    pub kind: MatchKind,
}

/// Names prepared for matching (a mall directory's shops, a city's stations).
#[derive(Debug, Clone, Default)]
pub struct NameIndex {
    entries: Vec<Entry>,
}

impl NameIndex {
    pub fn new<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> NameIndex {
        NameIndex {
            entries: names.into_iter().map(|n| prepare(n.as_ref())).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The best `limit` matches, best first. An empty query matches nothing.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        let q = Query::new(query);
        if q.text.is_empty() {
            return Vec::new();
        }
        let mut hits: Vec<Hit> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(index, e)| q.score(e).map(|(score, kind)| Hit { index, score, kind }))
            .collect();
        hits.sort_by(|a, b| {
            let (ea, eb) = (&self.entries[a.index], &self.entries[b.index]);
            b.score
                .cmp(&a.score)
                .then(ea.name.chars().count().cmp(&eb.name.chars().count()))
                .then(ea.name.cmp(&eb.name))
                .then(a.index.cmp(&b.index))
        });
        hits.truncate(limit);
        hits
    }
}

/// Score one query against one name (see the module table); `None` if it does not
/// match at all.
pub fn score(query: &str, name: &str) -> Option<(u32, MatchKind)> {
    Query::new(query).score(&prepare(name))
}

struct Query {
    text: String,
    units: Vec<String>,
    ascii: bool,
}

impl Query {
    fn new(query: &str) -> Query {
        let text = normalize(query);
        let ascii = text.bytes().all(|b| b.is_ascii_alphanumeric());
        Query {
            units: units(&text),
            text,
            ascii,
        }
    }

    fn score(&self, e: &Entry) -> Option<(u32, MatchKind)> {
        let q = self.text.as_str();
        if q.is_empty() {
            return None;
        }
        if e.text == q {
            return Some((1000, MatchKind::Exact));
        }
        if e.text.starts_with(q) {
            return Some((900, MatchKind::Prefix));
        }
        if e.text.contains(q) {
            return Some((800, MatchKind::Substring));
        }
        let mut best: Option<(u32, MatchKind)> = None;
        let mut offer = |s: u32, k: MatchKind| {
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, k));
            }
        };
        if self.ascii {
            if let Some(m) = syllable_match(q, &e.units) {
                offer(m.0, m.1);
            }
            let max_edits = if q.len() <= 5 { 1 } else { 2 };
            if q.len() >= 3 {
                let d = e
                    .words
                    .iter()
                    .chain(std::iter::once(&e.spelled))
                    .map(|w| osa_distance(q, w))
                    .min()
                    .unwrap_or(usize::MAX);
                if d <= max_edits {
                    offer(500 - 100 * d as u32, MatchKind::Typo);
                }
            }
        } else {
            let n = self.units.len();
            if n > 0 && n <= e.units.len() {
                if e.units == self.units {
                    offer(660, MatchKind::Homophone);
                } else if e.units.windows(n).any(|w| w == self.units.as_slice()) {
                    offer(650, MatchKind::Homophone);
                }
            }
            let mut rest = e.text.chars();
            if q.chars().all(|c| rest.any(|x| x == c)) {
                offer(450, MatchKind::Subsequence);
            }
        }
        best
    }
}

/// Lowercase; full-width ASCII to half-width; drop spaces and punctuation.
fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            'ü' | 'Ü' => 'v',
            c => c,
        })
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Pinyin syllables for Chinese characters, lowercase words for Latin runs.
fn units(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for (c, py) in text.chars().zip(text.to_pinyin()) {
        if c.is_ascii_alphanumeric() {
            word.push(c.to_ascii_lowercase());
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if let Some(p) = py {
            out.push(p.plain().replace('ü', "v"));
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn prepare(name: &str) -> Entry {
    let text = normalize(name);
    let units = units(&text);
    let words = units
        .iter()
        .zip(text_runs(&text))
        .filter(|(_, latin)| *latin)
        .map(|(u, _)| u.clone())
        .collect();
    Entry {
        name: name.to_owned(),
        spelled: units.concat(),
        text,
        units,
        words,
    }
}

/// For each unit of [`units`], whether it is a Latin word (true) or a syllable.
fn text_runs(text: &str) -> Vec<bool> {
    let mut out = Vec::new();
    let mut in_word = false;
    for (c, py) in text.chars().zip(text.to_pinyin()) {
        if c.is_ascii_alphanumeric() {
            if !in_word {
                out.push(true);
            }
            in_word = true;
        } else {
            in_word = false;
            if py.is_some() {
                out.push(false);
            }
        }
    }
    out
}

/// Can `q` be cut into non-empty prefixes of consecutive units starting at some unit?
/// Returns the best score and kind over all starting units.
fn syllable_match(q: &str, units: &[String]) -> Option<(u32, MatchKind)> {
    let q = q.as_bytes();
    let (n, m) = (q.len(), units.len());
    if m == 0 {
        return None;
    }
    // any[i][j]: q[i..] matches from unit j on (may stop early);
    // all[i][j]: and uses exactly the units j..m.
    let mut any = vec![vec![false; m + 1]; n + 1];
    let mut all = vec![vec![false; m + 1]; n + 1];
    any[n].fill(true);
    all[n][m] = true;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let u = units[j].as_bytes();
            let longest = u.len().min(n - i);
            for l in 1..=longest {
                if q[i + l - 1] != u[l - 1] {
                    break;
                }
                any[i][j] |= any[i + l][j + 1];
                all[i][j] |= all[i + l][j + 1];
            }
        }
    }
    if all[0][0] {
        let spelled: usize = units.iter().map(String::len).sum();
        return Some(if n == spelled {
            (780, MatchKind::Pinyin)
        } else if n == m {
            (760, MatchKind::PinyinInitials)
        } else {
            (740, MatchKind::PinyinMixed)
        });
    }
    if any[0][0] {
        return Some((700, MatchKind::PinyinPrefix));
    }
    (1..m)
        .find(|&j| any[0][j])
        .map(|j| (600u32.saturating_sub(j as u32), MatchKind::PinyinInside))
}

/// Optimal string alignment distance (Levenshtein plus adjacent swaps), on bytes: the
/// callers only pass ASCII.
fn osa_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 2 {
        return usize::MAX;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MALL: [&str; 14] = [
        "星巴克",
        "星巴克臻选",
        "麦当劳",
        "麦当劳甜品站",
        "肯德基KFC",
        "海底捞火锅",
        "UNIQLO优衣库",
        "屈臣氏",
        "华为授权体验店",
        "HUAWEI华为",
        "小米之家",
        "名创优品",
        "喜茶",
        "绿茶餐厅",
    ];

    fn top(index: &NameIndex, q: &str) -> Vec<&'static str> {
        index.search(q, 3).iter().map(|h| MALL[h.index]).collect()
    }

    #[test]
    fn pinyin_data_is_embedded() {
        assert_eq!(units("星巴克"), ["xing", "ba", "ke"]);
        assert_eq!(units("绿茶"), ["lv", "cha"]);
        assert_eq!(units("HUAWEI华为"), ["huawei", "hua", "wei"]);
        assert_eq!(prepare("HUAWEI华为").words, ["huawei"]);
        assert_eq!(prepare("肯德基KFC").words, ["kfc"]);
    }

    #[test]
    fn initials_find_the_shop() {
        let idx = NameIndex::new(MALL);
        assert_eq!(top(&idx, "xbk")[..2], ["星巴克", "星巴克臻选"]);
        assert_eq!(top(&idx, "mdl")[..2], ["麦当劳", "麦当劳甜品站"]);
        assert_eq!(top(&idx, "kdj")[0], "肯德基KFC");
        assert_eq!(top(&idx, "hdl")[0], "海底捞火锅");
        assert_eq!(top(&idx, "yyk")[0], "UNIQLO优衣库");
        assert_eq!(top(&idx, "qcs")[0], "屈臣氏");
        assert_eq!(top(&idx, "hw")[..2], ["华为授权体验店", "HUAWEI华为"]);
        assert_eq!(
            score("xbk", "星巴克"),
            Some((760, MatchKind::PinyinInitials))
        );
        assert_eq!(
            score("lc", "绿茶餐厅"),
            Some((700, MatchKind::PinyinPrefix))
        );
    }

    #[test]
    fn full_and_partial_pinyin() {
        let idx = NameIndex::new(MALL);
        assert_eq!(top(&idx, "xingba")[0], "星巴克");
        assert_eq!(score("xingbake", "星巴克"), Some((780, MatchKind::Pinyin)));
        assert_eq!(
            score("xingbk", "星巴克"),
            Some((740, MatchKind::PinyinMixed))
        );
        assert_eq!(
            score("haidilao", "海底捞火锅"),
            Some((700, MatchKind::PinyinPrefix))
        );
        assert_eq!(
            score("huoguo", "海底捞火锅"),
            Some((597, MatchKind::PinyinInside))
        );
        assert_eq!(top(&idx, "Mai Dang Lao")[0], "麦当劳");
    }

    #[test]
    fn chinese_text() {
        let idx = NameIndex::new(MALL);
        assert_eq!(top(&idx, "星巴克"), ["星巴克", "星巴克臻选"]);
        assert_eq!(
            score("海底捞", "海底捞火锅"),
            Some((900, MatchKind::Prefix))
        );
        assert_eq!(
            score("优衣库", "UNIQLO优衣库"),
            Some((800, MatchKind::Substring))
        );
        assert_eq!(top(&idx, "华为")[..2], ["华为授权体验店", "HUAWEI华为"]);
        assert_eq!(score("星巴可", "星巴克"), Some((660, MatchKind::Homophone)));
        assert_eq!(score("星克", "星巴克"), Some((450, MatchKind::Subsequence)));
        assert_eq!(score("星巴克", "麦当劳"), None);
    }

    #[test]
    fn latin_names_and_typos() {
        let idx = NameIndex::new(MALL);
        assert_eq!(top(&idx, "kfc")[0], "肯德基KFC");
        assert_eq!(top(&idx, "Uniqlo")[0], "UNIQLO优衣库");
        assert_eq!(top(&idx, "ＵＮＩＱＬＯ")[0], "UNIQLO优衣库");
        assert_eq!(score("uniqo", "UNIQLO优衣库"), Some((400, MatchKind::Typo)));
        assert_eq!(
            score("uniq", "UNIQLO优衣库"),
            Some((900, MatchKind::Prefix))
        );
        assert_eq!(
            score("unqilo", "UNIQLO优衣库"),
            Some((400, MatchKind::Typo))
        );
        assert_eq!(score("huawie", "HUAWEI华为"), Some((400, MatchKind::Typo)));
        assert_eq!(
            score("xinbake", "星巴克"),
            Some((740, MatchKind::PinyinMixed))
        );
        assert_eq!(score("xingbaek", "星巴克"), Some((400, MatchKind::Typo)));
        assert_eq!(score("zzz", "星巴克"), None);
        assert_eq!(osa_distance("abcd", "abdc"), 1);
        assert_eq!(osa_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn ranking_is_deterministic() {
        let idx = NameIndex::new(MALL);
        let a = idx.search("x", 20);
        assert_eq!(a, idx.search("x", 20));
        // Equal scores: shorter name first.
        let names: Vec<_> = a.iter().map(|h| MALL[h.index]).collect();
        assert_eq!(names[..3], ["喜茶", "星巴克", "小米之家"]);
        assert!(idx.search("", 5).is_empty());
        assert!(idx.search("  ", 5).is_empty());
        assert!(NameIndex::default().search("xbk", 5).is_empty());
    }
}
