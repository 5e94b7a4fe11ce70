//! Hand-drawn SVG charts for the report: a daily line chart with alert markers, bars over
//! labelled bins, and stacked shares per day. Each chart is one self-contained `<svg>` with its
//! axes, tick labels (`class="tick"`), axis titles (`class="axis-title"`) and `<title>`
//! tooltips, so the page needs neither script nor network.

use chrono::NaiveDate;

/// Escapes `text` for HTML and SVG, in content and in quoted attribute values alike.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number as a label: whole numbers without a fraction, large ones shortened (`12k`,
/// `1.5M`), others with up to two decimals.
pub fn number(x: f64) -> String {
    let abs = x.abs();
    if abs >= 1e6 {
        return format!("{}M", trimmed(x / 1e6, 1));
    }
    if abs >= 1e4 {
        return format!("{}k", trimmed(x / 1e3, 1));
    }
    trimmed(x, 2)
}

/// `x` with at most `decimals` decimals and no trailing zeros.
fn trimmed(x: f64, decimals: usize) -> String {
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The size of a chart and the room around its plot area for the axes.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

impl Frame {
    /// A full-width chart.
    pub const WIDE: Frame = Frame {
        width: 960.0,
        height: 260.0,
        left: 70.0,
        // room for half the last day's label, centred on the plot's right edge
        right: 40.0,
        top: 14.0,
        bottom: 46.0,
    };
    /// One of the small multiples.
    pub const SMALL: Frame = Frame {
        width: 300.0,
        height: 150.0,
        left: 46.0,
        right: 20.0,
        top: 10.0,
        bottom: 30.0,
    };

    fn plot_width(&self) -> f64 {
        self.width - self.left - self.right
    }

    fn plot_height(&self) -> f64 {
        self.height - self.top - self.bottom
    }

    /// The y of the plot's bottom edge (the x axis).
    fn base(&self) -> f64 {
        self.height - self.bottom
    }

    fn is_small(&self) -> bool {
        self.width < Self::WIDE.width
    }

    /// The opening tag of a chart named `title` (its accessible name and first tooltip).
    fn open(&self, class: &str, title: &str) -> String {
        format!(
            "<svg class=\"{class}\" viewBox=\"0 0 {} {}\" role=\"img\" \
             xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>\n",
            self.width,
            self.height,
            escape(title)
        )
    }
}

/// A value axis from `lo` to `hi` with round ticks between.
#[derive(Debug, Clone, PartialEq)]
struct ValueScale {
    ticks: Vec<f64>,
}

impl ValueScale {
    /// Ticks of a round step (1, 2 or 5 times a power of ten) covering `min..=max` and 0.
    fn covering(min: f64, max: f64, wanted: usize) -> Self {
        let (min, max) = (min.min(0.0), max.max(0.0));
        if !(max - min).is_finite() || max - min <= 0.0 {
            return Self {
                ticks: vec![0.0, 1.0],
            };
        }
        let raw = (max - min) / wanted.max(1) as f64;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * magnitude)
            .find(|step| *step >= raw)
            .unwrap_or(10.0 * magnitude);
        let first = (min / step).floor() as i64;
        let last = (max / step).ceil() as i64;
        Self {
            ticks: (first..=last).map(|i| i as f64 * step).collect(),
        }
    }

    fn lo(&self) -> f64 {
        self.ticks.first().copied().unwrap_or(0.0)
    }

    fn hi(&self) -> f64 {
        self.ticks.last().copied().unwrap_or(1.0)
    }

    /// The y of `value` in `frame`.
    fn y(&self, frame: &Frame, value: f64) -> f64 {
        let span = self.hi() - self.lo();
        frame.base() - (value - self.lo()) / span * frame.plot_height()
    }

    /// Grid lines, tick labels and the axis title.
    fn draw(&self, frame: &Frame, title: &str, label: impl Fn(f64) -> String) -> String {
        let mut out = String::from("<g class=\"y-axis\">");
        for &tick in &self.ticks {
            let y = self.y(frame, tick);
            out.push_str(&format!(
                "<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
                 <text class=\"tick\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                frame.left,
                frame.width - frame.right,
                frame.left - 6.0,
                y + 4.0,
                escape(&label(tick))
            ));
        }
        let middle = frame.top + frame.plot_height() / 2.0;
        let x = if frame.is_small() { 11.0 } else { 16.0 };
        out.push_str(&format!(
            "<text class=\"axis-title\" transform=\"translate({x} {middle:.1}) rotate(-90)\" \
             text-anchor=\"middle\">{}</text></g>\n",
            escape(title)
        ));
        out
    }
}

/// Days placed by date on the x axis (a day without a row leaves a gap).
struct DayScale {
    first: NaiveDate,
    span_days: i64,
    /// Room kept at each end of the plot (half a bar, for bars centred on their day).
    inset: f64,
}

impl DayScale {
    fn of(days: &[NaiveDate]) -> Self {
        let first = days.iter().min().copied().unwrap_or_default();
        let last = days.iter().max().copied().unwrap_or(first);
        Self {
            first,
            span_days: (last - first).num_days(),
            inset: 0.0,
        }
    }

    /// The width a day has when each day of the span is a bar.
    fn slot(&self, frame: &Frame) -> f64 {
        frame.plot_width() / (self.span_days + 1) as f64
    }

    /// The same scale with half a slot kept free at each end, so that bars stay in the plot.
    fn for_bars(self, frame: &Frame) -> Self {
        let inset = self.slot(frame) / 2.0;
        Self { inset, ..self }
    }

    fn x(&self, frame: &Frame, day: NaiveDate) -> f64 {
        if self.span_days == 0 {
            return frame.left + frame.plot_width() / 2.0;
        }
        let offset = (day - self.first).num_days() as f64;
        let width = frame.plot_width() - 2.0 * self.inset;
        frame.left + self.inset + offset / self.span_days as f64 * width
    }

    /// The labelled days: the first, the last, and evenly spaced days between (a small chart
    /// labels only the first and the last).
    fn ticks(&self, frame: &Frame) -> Vec<NaiveDate> {
        let most = if frame.is_small() { 1 } else { 6 };
        let step = (self.span_days + most - 1) / most;
        let mut ticks: Vec<NaiveDate> = (0..=self.span_days)
            .step_by(step.max(1) as usize)
            .map(|offset| self.first + chrono::Days::new(offset as u64))
            .collect();
        let last = self.first + chrono::Days::new(self.span_days as u64);
        // the last day replaces a tick too close to it
        if ticks.last() != Some(&last) {
            if let Some(previous) = ticks.last()
                && (last - *previous).num_days() * 2 < step
            {
                ticks.pop();
            }
            ticks.push(last);
        }
        ticks
    }

    fn draw(&self, frame: &Frame, title: &str) -> String {
        let base = frame.base();
        let mut out = format!(
            "<g class=\"x-axis\"><line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{base}\" \
             y2=\"{base}\"/>",
            frame.left,
            frame.width - frame.right
        );
        for day in self.ticks(frame) {
            let x = self.x(frame, day);
            let label = if frame.is_small() {
                day.format("%b %-d").to_string()
            } else {
                day.to_string()
            };
            out.push_str(&format!(
                "<line class=\"axis\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{base}\" y2=\"{:.1}\"/>\
                 <text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
                base + 4.0,
                base + 16.0,
            ));
        }
        if !frame.is_small() {
            out.push_str(&format!(
                "<text class=\"axis-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                frame.left + frame.plot_width() / 2.0,
                frame.height - 6.0,
                escape(title)
            ));
        }
        out.push_str("</g>\n");
        out
    }
}

/// A mark on one day of a line chart (the alerts that tripped there), told by its tooltip.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub day: NaiveDate,
    pub text: String,
}

/// One metric per day as a line, NULL days breaking it.
pub struct LineChart<'a> {
    /// The chart's accessible name.
    pub title: &'a str,
    /// The value axis' title.
    pub y_title: &'a str,
    pub days: &'a [NaiveDate],
    pub values: &'a [Option<f64>],
    /// Days to mark (alerts).
    pub markers: &'a [Marker],
    pub frame: Frame,
    /// The top of the value axis at least (small multiples of one segment share a scale).
    pub y_max: Option<f64>,
}

impl LineChart<'_> {
    pub fn render(&self) -> String {
        let frame = &self.frame;
        let present = || self.values.iter().flatten().copied();
        let max = present()
            .chain(self.y_max)
            .fold(f64::NEG_INFINITY, f64::max);
        let min = present().fold(f64::INFINITY, f64::min);
        let wanted = if frame.is_small() { 3 } else { 5 };
        let scale = ValueScale::covering(min, max, wanted);
        let days = DayScale::of(self.days);
        let mut out = frame.open("chart line-chart", self.title);
        out.push_str(&scale.draw(frame, self.y_title, number));
        out.push_str(&days.draw(frame, "day"));

        // the line, broken at NULL days
        let mut path = String::new();
        let mut pen_down = false;
        for (day, value) in self.days.iter().zip(self.values) {
            match value {
                Some(v) => {
                    let command = if pen_down { 'L' } else { 'M' };
                    path.push_str(&format!(
                        "{command}{:.1} {:.1} ",
                        days.x(frame, *day),
                        scale.y(frame, *v)
                    ));
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        out.push_str(&format!(
            "<path class=\"line\" d=\"{}\"/>\n",
            path.trim_end()
        ));
        // points with their value as a tooltip, where there is room for them
        if self.days.len() <= 120 {
            let radius = if frame.is_small() { 1.8 } else { 2.6 };
            for (day, value) in self.days.iter().zip(self.values) {
                if let Some(v) = value {
                    out.push_str(&format!(
                        "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{radius}\">\
                         <title>{day}: {}</title></circle>",
                        days.x(frame, *day),
                        scale.y(frame, *v),
                        number(*v)
                    ));
                }
            }
            out.push('\n');
        }
        for marker in self.markers {
            let x = days.x(frame, marker.day);
            let value = self
                .days
                .iter()
                .position(|d| *d == marker.day)
                .and_then(|i| self.values[i]);
            let y = value.map_or(frame.base(), |v| scale.y(frame, v));
            out.push_str(&format!(
                "<g class=\"alert-marker\"><title>{}</title>\
                 <line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{}\" y2=\"{}\"/>\
                 <circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"6\"/></g>\n",
                escape(&marker.text),
                frame.top,
                frame.base()
            ));
        }
        out.push_str("</svg>");
        out
    }
}

/// One bar per labelled bin.
pub struct BarChart<'a> {
    pub title: &'a str,
    pub x_title: &'a str,
    pub y_title: &'a str,
    /// `(label, count, tooltip)` of each bar, in order.
    pub bars: &'a [(String, i64, String)],
    pub frame: Frame,
}

impl BarChart<'_> {
    pub fn render(&self) -> String {
        let frame = &self.frame;
        let max = self.bars.iter().map(|b| b.1).max().unwrap_or(0) as f64;
        let scale = ValueScale::covering(0.0, max, 5);
        let mut out = frame.open("chart bar-chart", self.title);
        out.push_str(&scale.draw(frame, self.y_title, number));
        let slot = frame.plot_width() / self.bars.len().max(1) as f64;
        let base = frame.base();
        out.push_str(&format!(
            "<g class=\"x-axis\"><line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{base}\" \
             y2=\"{base}\"/>",
            frame.left,
            frame.width - frame.right
        ));
        for (i, (label, count, tooltip)) in self.bars.iter().enumerate() {
            let center = frame.left + slot * (i as f64 + 0.5);
            let top = scale.y(frame, *count as f64);
            out.push_str(&format!(
                "<rect class=\"bar\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\">\
                 <title>{}</title></rect>\
                 <text class=\"bar-value\" x=\"{center:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
                 <text class=\"tick\" x=\"{center:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                center - slot * 0.4,
                slot * 0.8,
                base - top,
                escape(tooltip),
                top - 4.0,
                number(*count as f64),
                base + 16.0,
                escape(label)
            ));
        }
        out.push_str(&format!(
            "<text class=\"axis-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             </g>\n</svg>",
            frame.left + frame.plot_width() / 2.0,
            frame.height - 6.0,
            escape(self.x_title)
        ));
        out
    }
}

/// The colours of the classes of a stacked chart, in order (reused past the last).
pub const PALETTE: [&str; 8] = [
    "#2a9d8f", "#e9c46a", "#e76f51", "#264653", "#8ab17d", "#f4a261", "#6d597a", "#b56576",
];

/// Each day's counts per class as shares of the day stacked to 100%.
pub struct StackedShares<'a> {
    pub title: &'a str,
    pub days: &'a [NaiveDate],
    pub classes: &'a [String],
    /// Per day, the count of each class (NULL counts as 0).
    pub counts: &'a [Vec<i64>],
    pub frame: Frame,
}

impl StackedShares<'_> {
    pub fn render(&self) -> String {
        let frame = &self.frame;
        let scale = ValueScale {
            ticks: vec![0.0, 25.0, 50.0, 75.0, 100.0],
        };
        let days = DayScale::of(self.days).for_bars(frame);
        let mut out = frame.open("chart stacked-chart", self.title);
        out.push_str(&scale.draw(frame, "share of sessions (%)", |t| format!("{t:.0}%")));
        out.push_str(&days.draw(frame, "day"));
        let width = (days.slot(frame) * 0.8).max(1.0);
        for (day, counts) in self.days.iter().zip(self.counts) {
            let total: i64 = counts.iter().sum();
            if total <= 0 {
                continue;
            }
            let x = days.x(frame, *day) - width / 2.0;
            let mut below = 0.0;
            for (i, (class, count)) in self.classes.iter().zip(counts).enumerate() {
                let share = 100.0 * *count as f64 / total as f64;
                let (top, bottom) = (scale.y(frame, below + share), scale.y(frame, below));
                out.push_str(&format!(
                    "<rect class=\"share\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" \
                     height=\"{:.1}\" fill=\"{}\"><title>{day} {}: {count} ({share:.1}%)</title></rect>",
                    bottom - top,
                    PALETTE[i % PALETTE.len()],
                    escape(class)
                ));
                below += share;
            }
        }
        out.push_str("\n</svg>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_values() {
        let scale = ValueScale::covering(3.0, 947.0, 5);
        assert_eq!(scale.ticks, vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        assert_eq!(ValueScale::covering(0.0, 0.0, 5).ticks, vec![0.0, 1.0]);
        let shares = ValueScale::covering(0.0, 0.3, 3);
        let labels: Vec<String> = shares.ticks.iter().map(|t| number(*t)).collect();
        assert_eq!(labels, ["0", "0.1", "0.2", "0.3"]);
    }

    #[test]
    fn numbers_and_text_are_shown_safely() {
        assert_eq!(number(1200.0), "1200");
        assert_eq!(number(23_456.0), "23.5k");
        assert_eq!(number(2_000_000.0), "2M");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn day_ticks_include_both_ends() {
        let day = |d: &str| d.parse::<NaiveDate>().unwrap();
        let days: Vec<NaiveDate> = (0..30)
            .map(|i| day("2024-03-01") + chrono::Days::new(i))
            .collect();
        let ticks = DayScale::of(&days).ticks(&Frame::WIDE);
        assert_eq!(ticks.first(), Some(&day("2024-03-01")));
        assert_eq!(ticks.last(), Some(&day("2024-03-30")));
        assert!(ticks.len() <= 7, "{ticks:?}");
        let small = DayScale::of(&days).ticks(&Frame::SMALL);
        assert_eq!(small, vec![day("2024-03-01"), day("2024-03-30")]);
        assert_eq!(
            DayScale::of(&days[..1]).ticks(&Frame::WIDE),
            vec![day("2024-03-01")]
        );
    }
}
