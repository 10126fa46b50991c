//! Charts as SVG drawn here, a few shapes each: no script, no chart library, nothing from
//! elsewhere. Every chart carries a title and a description for screen readers, and its page
//! shows the figures as a table too.

use std::fmt::Write;

/// One series of a grouped bar chart: its name and colour (with the page's white, each
/// colour has a contrast of at least 3:1, WCAG 1.4.11).
pub(super) struct Series<'a> {
    pub(super) name: &'a str,
    pub(super) colour: &'a str,
    pub(super) values: Vec<u32>,
}

const WIDTH: u32 = 720;
const HEIGHT: u32 = 260;
const LEFT: u32 = 40;
const BOTTOM: u32 = 40;
const TOP: u32 = 30;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A grouped bar chart: one group per label, one bar per series, a legend above.
pub(super) fn bars(title: &str, labels: &[String], series: &[Series<'_>]) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = WIDTH - LEFT - 10;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let group_w = plot_w / (labels.len().max(1) as u32);
    let bar_w = (group_w.saturating_sub(6) / (series.len().max(1) as u32)).max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-labelledby=\"chart-title chart-desc\"><title id=\"chart-title\">{}</title>\
         <desc id=\"chart-desc\">{}</desc>",
        escape(title),
        escape(&describe(labels, series))
    );
    // Axis and the top value.
    let base = HEIGHT - BOTTOM;
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#1b1b1b\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\" fill=\"#1b1b1b\">{max}</text>\
         <text x=\"{}\" y=\"{base}\" font-size=\"12\" text-anchor=\"end\" fill=\"#1b1b1b\">0</text>",
        WIDTH - 10,
        LEFT - 4,
        TOP + 4,
        LEFT - 4
    );
    for (i, label) in labels.iter().enumerate() {
        let x0 = LEFT + i as u32 * group_w + 3;
        for (j, s) in series.iter().enumerate() {
            let v = s.values.get(i).copied().unwrap_or(0);
            let h = v * plot_h / max;
            let _ = write!(
                svg,
                "<rect x=\"{}\" y=\"{}\" width=\"{bar_w}\" height=\"{h}\" fill=\"{}\"/>",
                x0 + j as u32 * bar_w,
                base - h,
                s.colour
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#1b1b1b\">{}</text>",
            x0 + group_w / 2,
            base + 16,
            escape(label)
        );
    }
    for (j, s) in series.iter().enumerate() {
        let x = LEFT + j as u32 * 150;
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"6\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"16\" font-size=\"12\" fill=\"#1b1b1b\">{}</text>",
            s.colour,
            x + 16,
            escape(s.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The chart's figures in words, for its description.
fn describe(labels: &[String], series: &[Series<'_>]) -> String {
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let parts: Vec<String> = series
                .iter()
                .map(|s| format!("{} {}", s.values.get(i).copied().unwrap_or(0), s.name))
                .collect();
            format!("{l}: {}", parts.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_per_value_scaled_to_the_largest_and_described() {
        let labels = vec!["1 Dec".to_owned(), "8 Dec <x>".to_owned()];
        let svg = bars(
            "Requests",
            &labels,
            &[
                Series {
                    name: "received",
                    colour: "#0b5394",
                    values: vec![4, 2],
                },
                Series {
                    name: "overdue",
                    colour: "#a30000",
                    values: vec![0, 1],
                },
            ],
        );
        assert!(svg.starts_with("<svg "));
        assert_eq!(
            svg.matches("<rect").count(),
            4 + 2,
            "four bars and two legend keys"
        );
        let plot_h = HEIGHT - BOTTOM - TOP;
        assert!(
            svg.contains(&format!("height=\"{plot_h}\"")),
            "the largest bar is full height"
        );
        assert!(svg.contains("8 Dec &lt;x&gt;"), "labels are escaped");
        assert!(
            svg.contains("1 Dec: 4 received, 0 overdue; 8 Dec &lt;x&gt;: 2 received, 1 overdue")
        );
        assert!(!svg.contains("<script"));
    }
}
