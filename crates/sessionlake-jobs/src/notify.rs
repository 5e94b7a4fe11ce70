//! Delivering the alerts of a committed run to the job's webhook and by e-mail (`[alerting]`).
//! Each delivery is tried `alerting.attempts` times; one that still fails is a warning, never an
//! error: the outputs are committed already, and the exit code stays the alerts' own.

use std::future::Future;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::alerting::{Alerting, Email, SmtpSecurity, Webhook, WebhookFormat};
use crate::alerts::Alert;
use crate::email_message::email_message;
use crate::slack_message::slack_message;

/// How long one try of a delivery may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Delivers `alerts` of job `job` to every destination of `alerting` and returns one warning
/// for each delivery that failed (each is logged too). Nothing happens without alerts.
pub async fn deliver(alerting: &Alerting, job: &str, alerts: &[Alert]) -> Vec<String> {
    let mut warnings = Vec::new();
    if alerts.is_empty() {
        return warnings;
    }
    if let Some(webhook) = &alerting.webhook {
        let what = format!("alert webhook {}", shown_url(&webhook.url));
        let result = with_attempts(&what, alerting, || post(webhook, job, alerts)).await;
        warnings.extend(result.err());
    }
    if let Some(email) = &alerting.email {
        let what = format!("alert e-mail via {}:{}", email.host, email.port);
        let result = with_attempts(&what, alerting, || send(email, job, alerts)).await;
        warnings.extend(result.err());
    }
    warnings
}

/// Why one try of a delivery failed, and whether another try may succeed.
struct Failure {
    message: String,
    retry: bool,
}

impl Failure {
    fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry: true,
        }
    }

    fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry: false,
        }
    }
}

/// Tries `attempt` until it succeeds, fails for good, or has been tried `alerting.attempts`
/// times, waiting [`Alerting::wait_after`] between tries; the error is the warning.
async fn with_attempts<F, Fut>(
    what: &str,
    alerting: &Alerting,
    mut attempt: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let attempts = alerting.attempts;
    for tried in 1..=attempts {
        match attempt().await {
            Ok(()) => {
                tracing::info!(to = %what, attempt = tried, "alerts delivered");
                return Ok(());
            }
            Err(failure) if failure.retry && tried < attempts => {
                let wait = alerting.wait_after(tried);
                tracing::info!(
                    to = %what,
                    attempt = tried,
                    error = %failure.message,
                    wait_ms = wait.as_millis() as u64,
                    "alert delivery failed; trying again"
                );
                tokio::time::sleep(wait).await;
            }
            Err(failure) => {
                let tries = if tried == 1 {
                    "1 attempt".to_string()
                } else {
                    format!("{tried} attempts")
                };
                let warning = format!("{what}: {} ({tries})", failure.message);
                tracing::warn!(warning = %warning, "alert delivery failed");
                return Err(warning);
            }
        }
    }
    // `attempts` is at least 1, so the loop returned
    Err(format!("{what}: not tried"))
}

/// The webhook's URL as messages show it: scheme, host and port; the path of a Slack webhook
/// (and of many others) is its secret.
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}{}/…",
            parsed.scheme(),
            parsed.host_str().unwrap_or(""),
            parsed.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(an invalid URL)".to_string(),
    }
}

/// One POST of the alerts to the webhook.
async fn post(webhook: &Webhook, job: &str, alerts: &[Alert]) -> Result<(), Failure> {
    let body = match webhook.format {
        WebhookFormat::Json => serde_json::json!({ "job": job, "alerts": alerts }),
        WebhookFormat::Slack => slack_message(job, alerts),
    };
    let response = reqwest::Client::new()
        .post(&webhook.url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(ATTEMPT_TIMEOUT)
        .send()
        .await
        // the error's text leaves the URL out (see `shown_url`)
        .map_err(|e| Failure::retry(e.without_url().to_string()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // Slack says what is wrong in a word (`invalid_payload`, `no_service`): show the start
    let said = response.text().await.unwrap_or_default();
    let said: String = said.trim().chars().take(200).collect();
    let message = if said.is_empty() {
        format!("the server answered {status}")
    } else {
        format!("the server answered {status}: {said}")
    };
    // a request the server refuses stays refused; a busy or failing server may recover
    let retry = status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
    Err(Failure { message, retry })
}

/// One SMTP delivery of the alert e-mail.
async fn send(email: &Email, job: &str, alerts: &[Alert]) -> Result<(), Failure> {
    let message = email_message(email, job, alerts).map_err(Failure::permanent)?;
    let mut builder = match email.security {
        SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&email.host)
            .map_err(|e| Failure::permanent(e.to_string()))?,
        SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&email.host),
    }
    .port(email.port)
    .timeout(Some(ATTEMPT_TIMEOUT));
    if let Some(login) = &email.login {
        let password = std::env::var(&login.password_env).map_err(|_| {
            Failure::permanent(format!(
                "the environment variable {} (alerting.email.password_env) is not set",
                login.password_env
            ))
        })?;
        builder = builder.credentials(Credentials::new(login.username.clone(), password));
    }
    builder.build().send(message).await.map_err(|e| {
        // a permanent SMTP reply (5xx: a rejected address or login) stays the same on a retry
        let message = e.to_string();
        if e.is_permanent() {
            Failure::permanent(message)
        } else {
            Failure::retry(message)
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_show_no_webhook_path() {
        assert_eq!(
            shown_url("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            shown_url("http://127.0.0.1:8080/hooks/alerts"),
            "http://127.0.0.1:8080/…"
        );
    }

    #[tokio::test]
    async fn a_missing_password_variable_is_a_warning_naming_it_without_retries() {
        let alerting = Alerting {
            email: Some(Email {
                host: "127.0.0.1".into(),
                // nothing is sent: the password is looked up first
                port: 9,
                security: SmtpSecurity::StartTls,
                from: "jobs@example.com".parse().unwrap(),
                to: vec!["ops@example.com".parse().unwrap()],
                login: Some(crate::alerting::SmtpLogin {
                    username: "jobs".into(),
                    password_env: "SESSIONLAKE_TEST_NEVER_SET_PASSWORD".into(),
                }),
            }),
            retry_delay: Duration::from_secs(60),
            ..Alerting::default()
        };
        let alert = Alert {
            day: "2024-01-05".parse().unwrap(),
            alert: "few".into(),
            metric: "sessions".into(),
            segment: None,
            segment_value: None,
            value: 1.0,
            threshold: 2.0,
            message: "sessions = 1.000 is below 2".into(),
        };
        let started = std::time::Instant::now();
        let warnings = deliver(&alerting, "j", &[alert]).await;
        assert_eq!(
            warnings,
            ["alert e-mail via 127.0.0.1:9: the environment variable \
              SESSIONLAKE_TEST_NEVER_SET_PASSWORD (alerting.email.password_env) is not set \
              (1 attempt)"]
        );
        // not retried: a retry would have waited a minute
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(deliver(&alerting, "j", &[]).await.is_empty());
    }

    #[test]
    fn waits_double_up_to_a_minute() {
        let alerting = Alerting {
            retry_delay: Duration::from_secs(2),
            ..Alerting::default()
        };
        let waits: Vec<u64> = (1..=7).map(|n| alerting.wait_after(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60]);
    }
}
