//! The alert webhook's body for Slack (`alerting.webhook_format = "slack"`): `text` (the
//! notification, and what clients without blocks show) and Block Kit `blocks`, a header then a
//! section per alert, kept within Slack's limits.

use serde_json::{Value, json};

use crate::alerts::{Alert, alert_count};

/// At most this many blocks in one message (Slack's limit).
pub const MAX_BLOCKS: usize = 50;
/// At most this many characters in a section's text (Slack's limit).
pub const MAX_SECTION_CHARS: usize = 3000;
/// At most this many characters in the header's text (Slack's limit).
pub const MAX_HEADER_CHARS: usize = 150;
/// At most this many characters in `text`: Slack truncates a message's text after 40,000
/// characters and advises fewer than 4,000; a notification needs far fewer.
pub const MAX_TEXT_CHARS: usize = 3000;

/// The Slack message for `alerts` of job `job`: every alert in `blocks` when they fit (49),
/// else the first 48 and a last block saying `… and N more alerts`; `text` is the summary line
/// and as many alert lines as fit in [`MAX_TEXT_CHARS`], with the same last line.
pub fn slack_message(job: &str, alerts: &[Alert]) -> Value {
    let title = format!("sessionlake job {job}: {}", alert_count(alerts.len()));
    json!({
        "text": text(&title, alerts),
        "blocks": blocks(&title, alerts),
    })
}

/// The last line or block when `n` alerts did not fit: `… and 72 more alerts`.
fn more_alerts(n: usize) -> String {
    let noun = if n == 1 { "alert" } else { "alerts" };
    format!("… and {n} more {noun}")
}

fn text(title: &str, alerts: &[Alert]) -> String {
    // room kept for the last line, `… and N more alerts` (N has at most 20 digits)
    const MORE_LINE_CHARS: usize = 40;
    let mut text = truncate(&escape(title), MAX_TEXT_CHARS - MORE_LINE_CHARS);
    let mut length = text.chars().count();
    for (shown, alert) in alerts.iter().enumerate() {
        let line = format!(
            "\n• {} {}: {}",
            alert.day,
            escape(&alert.alert),
            escape(&alert.message)
        );
        let line_length = line.chars().count();
        if length + line_length > MAX_TEXT_CHARS - MORE_LINE_CHARS {
            text.push('\n');
            text.push_str(&more_alerts(alerts.len() - shown));
            break;
        }
        text.push_str(&line);
        length += line_length;
    }
    text
}

fn blocks(title: &str, alerts: &[Alert]) -> Vec<Value> {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(title, MAX_HEADER_CHARS)},
    })];
    // the header takes one block; when the alerts need more than the rest, the last says how
    // many were left out
    let shown = if alerts.len() < MAX_BLOCKS {
        alerts.len()
    } else {
        MAX_BLOCKS - 2
    };
    for alert in &alerts[..shown] {
        let text = format!(
            "*{}*  *{}* ({})\n{}",
            alert.day,
            escape(&alert.alert),
            escape(&alert.metric),
            escape(&alert.message)
        );
        blocks.push(section(&text));
    }
    if shown < alerts.len() {
        blocks.push(section(&more_alerts(alerts.len() - shown)));
    }
    blocks
}

fn section(text: &str) -> Value {
    json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION_CHARS)},
    })
}

/// Slack's mrkdwn reads `&`, `<` and `>` as markup: written as entities, an alert's name shows
/// as written.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `text` cut to at most `max` characters, ending in `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alerts(n: usize, name: &str) -> Vec<Alert> {
        (0..n)
            .map(|i| Alert {
                day: chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()
                    + chrono::Days::new(i as u64),
                alert: name.to_string(),
                metric: "avg_length_s".into(),
                segment: None,
                segment_value: None,
                value: i as f64,
                threshold: 150.0,
                message: format!("avg_length_s = {i}.000 is below 150"),
            })
            .collect()
    }

    fn block_text(block: &Value) -> &str {
        block["text"]["text"].as_str().unwrap()
    }

    #[test]
    fn a_few_alerts_get_a_header_and_a_section_each() {
        let message = slack_message("sample_daily", &alerts(3, "short"));
        let text = message["text"].as_str().unwrap();
        assert_eq!(
            text,
            "sessionlake job sample_daily: 3 alerts\n\
             • 2024-01-01 short: avg_length_s = 0.000 is below 150\n\
             • 2024-01-02 short: avg_length_s = 1.000 is below 150\n\
             • 2024-01-03 short: avg_length_s = 2.000 is below 150"
        );
        let blocks = message["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 4);
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(
            block_text(&blocks[0]),
            "sessionlake job sample_daily: 3 alerts"
        );
        assert_eq!(blocks[1]["type"], "section");
        assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
        assert_eq!(
            block_text(&blocks[3]),
            "*2024-01-03*  *short* (avg_length_s)\navg_length_s = 2.000 is below 150"
        );
        let one = slack_message("j", &alerts(1, "short"));
        assert_eq!(block_text(&one["blocks"][0]), "sessionlake job j: 1 alert");
    }

    #[test]
    fn many_alerts_stay_within_slacks_limits() {
        // 49 alerts fit beside the header; 50 do not
        let message = slack_message("j", &alerts(49, "short"));
        assert_eq!(message["blocks"].as_array().unwrap().len(), 50);
        assert!(!message.to_string().contains("more alert"));

        let message = slack_message("j", &alerts(120, "short"));
        let blocks = message["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), MAX_BLOCKS);
        assert_eq!(
            block_text(&blocks[48]).lines().next(),
            Some("*2024-02-17*  *short* (avg_length_s)")
        );
        assert_eq!(block_text(&blocks[49]), "… and 72 more alerts");
        let text = message["text"].as_str().unwrap();
        assert!(text.chars().count() <= MAX_TEXT_CHARS, "{}", text.len());
        assert!(text.starts_with("sessionlake job j: 120 alerts\n• 2024-01-01 short: "));
        let listed = text.lines().filter(|l| l.starts_with("• ")).count();
        assert!(listed > 10, "{text}");
        assert_eq!(
            text.lines().last().unwrap(),
            format!("… and {} more alerts", 120 - listed)
        );

        // a long name is cut in each block, and the text then lists none but says how many
        let long_name = "n".repeat(5000);
        let message = slack_message(&long_name, &alerts(2, &long_name));
        let blocks = message["blocks"].as_array().unwrap();
        assert_eq!(block_text(&blocks[0]).chars().count(), MAX_HEADER_CHARS);
        assert_eq!(block_text(&blocks[1]).chars().count(), MAX_SECTION_CHARS);
        assert!(block_text(&blocks[1]).ends_with('…'));
        let text = message["text"].as_str().unwrap();
        assert!(text.chars().count() <= MAX_TEXT_CHARS);
        assert!(
            text.ends_with("\n… and 2 more alerts"),
            "{}",
            &text[text.len() - 40..]
        );
    }

    #[test]
    fn markup_in_names_is_escaped() {
        let message = slack_message("j", &alerts(1, "<!channel> & co"));
        assert!(
            block_text(&message["blocks"][1])
                .starts_with("*2024-01-01*  *&lt;!channel&gt; &amp; co*")
        );
        assert!(
            message["text"]
                .as_str()
                .unwrap()
                .contains("&lt;!channel&gt; &amp; co: ")
        );
    }
}
