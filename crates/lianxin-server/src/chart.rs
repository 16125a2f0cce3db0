//! Small server-side SVG charts: no JavaScript, no external library, readable on a
//! phone, and they print. Labels are escaped here because the SVG is inserted into
//! pages as trusted markup.

/// A horizontal bar chart of `(label, value)` pairs.
pub fn bar_chart(title: &str, items: &[(String, i64)]) -> String {
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let row_h = 28;
    let label_w = 120;
    let bar_w = 200;
    let height = row_h * items.len().max(1) as i32 + 8;
    let mut svg = format!(
        r#"<svg class="chart" role="img" aria-label="{t}" viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMinYMin meet"><title>{t}</title>"#,
        t = escape(title),
        w = label_w + bar_w + 70,
        h = height
    );
    for (i, (label, value)) in items.iter().enumerate() {
        let y = i as i32 * row_h + 4;
        let w = ((*value as f64 / max as f64) * bar_w as f64).round() as i32;
        svg.push_str(&format!(
            r#"<text x="{lx}" y="{ty}" text-anchor="end" class="chart-label">{label}</text><rect x="{bx}" y="{y}" width="{w}" height="{bh}" rx="3" class="chart-bar"/><text x="{vx}" y="{ty}" class="chart-value">{value}</text>"#,
            lx = label_w - 8,
            ty = y + 16,
            label = escape(label),
            bx = label_w,
            bh = row_h - 8,
            vx = label_w + w + 6,
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// A horizontal bar chart of rates between 0 and 1, drawn against a full-width 100%
/// track; a missing rate (nothing judged yet) shows "—" and no bar.
pub fn rate_bar_chart(title: &str, items: &[(String, Option<f64>)]) -> String {
    let row_h = 28;
    let label_w = 170;
    let bar_w = 200;
    let height = row_h * items.len().max(1) as i32 + 8;
    let mut svg = format!(
        r#"<svg class="chart" role="img" aria-label="{t}" viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMinYMin meet"><title>{t}</title>"#,
        t = escape(title),
        w = label_w + bar_w + 70,
        h = height
    );
    // Long names are cut so that twelve 13-pixel characters fit left of the bars.
    for (i, (label, rate)) in items.iter().enumerate() {
        let y = i as i32 * row_h + 4;
        let share = rate.unwrap_or(0.0).clamp(0.0, 1.0);
        let w = (share * bar_w as f64).round() as i32;
        let label: String = if label.chars().count() > 12 {
            label.chars().take(11).chain(['…']).collect()
        } else {
            label.clone()
        };
        svg.push_str(&format!(
            r#"<text x="{lx}" y="{ty}" text-anchor="end" class="chart-label">{label}</text><rect x="{bx}" y="{y}" width="{bar_w}" height="{bh}" rx="3" class="chart-track"/><rect x="{bx}" y="{y}" width="{w}" height="{bh}" rx="3" class="chart-bar"/><text x="{vx}" y="{ty}" class="chart-value">{value}</text>"#,
            lx = label_w - 8,
            ty = y + 16,
            label = escape(&label),
            bx = label_w,
            bh = row_h - 8,
            vx = label_w + bar_w + 6,
            value = escape(&lianxin_domain::rates::percent(*rate)),
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn bars_scale_and_labels_escape() {
        let svg = super::bar_chart("t", &[("<b>".into(), 10), ("b".into(), 5)]);
        assert!(svg.contains("&lt;b&gt;"));
        assert!(svg.contains(r#"width="200""#));
        assert!(svg.contains(r#"width="100""#));
    }

    #[test]
    fn rate_bars_show_percentages_and_a_dash_for_no_rate() {
        let svg = super::rate_bar_chart("t", &[("a".into(), Some(0.5)), ("<b>".into(), None)]);
        assert!(svg.contains("50.00%") && svg.contains("—") && svg.contains("&lt;b&gt;"));
        assert!(svg.contains(r#"width="100" height"#));
    }
}
