//! The alert e-mail (`[alerting.email]`): a plain-text message whose subject names the job,
//! how many alerts and their days, and whose body lists every alert with all its fields.

use std::fmt::Write;

use lettre::Message;
use lettre::message::header::ContentType;

use crate::alerting::Email;
use crate::alerts::{Alert, alert_count};

/// `[sessionlake] sample_daily: 3 alerts (2024-01-05)`, or with the first and last day
/// (`2024-01-03 to 2024-01-05`) when the alerts are on several days.
pub fn subject(job: &str, alerts: &[Alert]) -> String {
    let first = alerts.iter().map(|a| a.day).min();
    let last = alerts.iter().map(|a| a.day).max();
    let days = match (first, last) {
        (Some(first), Some(last)) if first == last => format!(" ({first})"),
        (Some(first), Some(last)) => format!(" ({first} to {last})"),
        _ => String::new(),
    };
    format!("[sessionlake] {job}: {}{days}", alert_count(alerts.len()))
}

/// The body: a line saying what the message is, then each alert's day, name, metric, value,
/// threshold and message.
pub fn body(job: &str, alerts: &[Alert]) -> String {
    let mut body = format!(
        "sessionlake job {job} committed its outputs with {} on the days it rewrote:\n",
        alert_count(alerts.len())
    );
    for alert in alerts {
        // writing to a String cannot fail
        let _ = write!(
            body,
            "\n{} {}\n  metric:    {}\n  value:     {}\n  threshold: {}\n  message:   {}\n",
            alert.day, alert.alert, alert.metric, alert.value, alert.threshold, alert.message
        );
    }
    body
}

/// The e-mail for `alerts` of job `job`, from and to the addresses of `email`.
pub fn email_message(email: &Email, job: &str, alerts: &[Alert]) -> Result<Message, String> {
    let mut builder = Message::builder()
        .from(email.from.clone())
        .subject(subject(job, alerts))
        .header(ContentType::TEXT_PLAIN);
    for to in &email.to {
        builder = builder.to(to.clone());
    }
    builder
        .body(body(job, alerts))
        .map_err(|e| format!("the alert e-mail: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(day: &str, name: &str, value: f64) -> Alert {
        Alert {
            day: day.parse().unwrap(),
            alert: name.into(),
            metric: "sessions".into(),
            segment: None,
            segment_value: None,
            value,
            threshold: 100.0,
            message: format!("sessions = {value:.3} is below 100"),
        }
    }

    #[test]
    fn subject_names_the_job_the_count_and_the_days() {
        let one = [alert("2024-01-05", "few", 3.0)];
        assert_eq!(
            subject("sample_daily", &one),
            "[sessionlake] sample_daily: 1 alert (2024-01-05)"
        );
        let three = [
            alert("2024-01-05", "few", 3.0),
            alert("2024-01-03", "few", 5.0),
            alert("2024-01-05", "drop", 3.0),
        ];
        assert_eq!(
            subject("sample_daily", &three),
            "[sessionlake] sample_daily: 3 alerts (2024-01-03 to 2024-01-05)"
        );
    }

    #[test]
    fn body_lists_every_field_of_every_alert() {
        let alerts = [
            alert("2024-01-05", "few", 3.5),
            alert("2024-01-06", "few", 7.0),
        ];
        assert_eq!(
            body("j", &alerts),
            "sessionlake job j committed its outputs with 2 alerts on the days it rewrote:\n\
             \n2024-01-05 few\n  metric:    sessions\n  value:     3.5\n  threshold: 100\n  \
             message:   sessions = 3.500 is below 100\n\
             \n2024-01-06 few\n  metric:    sessions\n  value:     7\n  threshold: 100\n  \
             message:   sessions = 7.000 is below 100\n"
        );
    }
}
