//! The `[alerting]` settings of a job file: where the alerts a run trips are delivered (a
//! webhook, as JSON or as a Slack message, and e-mail over SMTP) and how often a delivery is
//! tried, validated into typed values. Delivering is `notify`'s.

use std::time::Duration;

use lettre::message::Mailbox;
use serde::Deserialize;
use sessionlake_functions::time_unit::parse_span;

/// Where and how tripped alerts are delivered (`[alerting]`).
#[derive(Debug, Clone)]
pub struct Alerting {
    /// `alerting.webhook` with `alerting.webhook_format`.
    pub webhook: Option<Webhook>,
    /// `[alerting.email]`.
    pub email: Option<Email>,
    /// How many times each delivery is tried (`alerting.attempts`), at least 1.
    pub attempts: u32,
    /// The wait before the second try (`alerting.retry_delay`); each later wait doubles, up to
    /// [`MAX_RETRY_WAIT`].
    pub retry_delay: Duration,
}

/// The default `alerting.attempts`.
pub const DEFAULT_ATTEMPTS: u32 = 3;
/// The largest `alerting.attempts`.
pub const MAX_ATTEMPTS: u32 = 10;
/// The default `alerting.retry_delay`.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(2);
/// The longest wait between two tries, and the largest `alerting.retry_delay`: a cron job
/// waits for its deliveries, so they must not hold it for long.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

impl Default for Alerting {
    fn default() -> Self {
        Self {
            webhook: None,
            email: None,
            attempts: DEFAULT_ATTEMPTS,
            retry_delay: DEFAULT_RETRY_DELAY,
        }
    }
}

impl Alerting {
    /// The wait after failed try number `attempt` (1-based): `retry_delay`, doubled for each
    /// try after the first, at most [`MAX_RETRY_WAIT`].
    pub fn wait_after(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.retry_delay.saturating_mul(factor).min(MAX_RETRY_WAIT)
    }
}

/// The webhook tripped alerts are POSTed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// An `http://` or `https://` URL.
    pub url: String,
    pub format: WebhookFormat,
}

/// The body of the webhook's POST (`alerting.webhook_format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WebhookFormat {
    /// `{"job": ..., "alerts": [...]}`, the default.
    #[default]
    Json,
    /// A Slack message (`text` and `blocks`), for a Slack incoming webhook.
    Slack,
}

/// Alert e-mails (`[alerting.email]`).
#[derive(Debug, Clone)]
pub struct Email {
    /// The SMTP server.
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub from: Mailbox,
    /// At least one recipient.
    pub to: Vec<Mailbox>,
    /// The login, if the server wants one.
    pub login: Option<SmtpLogin>,
}

/// An SMTP login: the user name, and the name of the environment variable that holds the
/// password (read when an e-mail is sent; the password is never in the job file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpLogin {
    pub username: String,
    pub password_env: String,
}

/// How the SMTP connection is protected (`alerting.email.security`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP upgraded with STARTTLS, which the server must offer (the default).
    #[default]
    StartTls,
    /// Plain SMTP, nothing encrypted: for a relay on this machine or a private network.
    None,
}

/// The default `alerting.email.port` (submission).
pub const DEFAULT_SMTP_PORT: u16 = 587;

// ---------------------------------------------------------------------------------------------
// The file as written

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertingFile {
    webhook: Option<String>,
    webhook_format: Option<String>,
    attempts: Option<u32>,
    retry_delay: Option<String>,
    email: Option<EmailFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailFile {
    host: Option<String>,
    port: Option<u16>,
    security: Option<String>,
    from: Option<String>,
    to: Option<Vec<String>>,
    username: Option<String>,
    password_env: Option<String>,
}

/// A key of `[alerting]` and what is wrong with its value.
type Invalid = (String, String);

fn invalid(key: impl Into<String>, message: impl Into<String>) -> Invalid {
    (key.into(), message.into())
}

impl Alerting {
    /// Validates the `[alerting]` table, if any; an error names the key.
    pub(crate) fn validate(file: Option<AlertingFile>) -> Result<Self, Invalid> {
        let Some(file) = file else {
            return Ok(Self::default());
        };
        let format = match file.webhook_format.as_deref() {
            None => WebhookFormat::default(),
            Some(text) => choose(
                "alerting.webhook_format",
                "a webhook format",
                text,
                &[
                    ("json", WebhookFormat::Json),
                    ("slack", WebhookFormat::Slack),
                ],
            )?,
        };
        let webhook = match file.webhook {
            Some(url) => Some(Webhook {
                url: validate_url(url)?,
                format,
            }),
            None if file.webhook_format.is_some() => {
                return Err(invalid(
                    "alerting.webhook_format",
                    "only applies with alerting.webhook",
                ));
            }
            None => None,
        };
        let attempts = file.attempts.unwrap_or(DEFAULT_ATTEMPTS);
        if !(1..=MAX_ATTEMPTS).contains(&attempts) {
            return Err(invalid(
                "alerting.attempts",
                format!("must be from 1 to {MAX_ATTEMPTS}, found {attempts}"),
            ));
        }
        let retry_delay = match file.retry_delay {
            None => DEFAULT_RETRY_DELAY,
            Some(text) => validate_retry_delay(&text)?,
        };
        let email = file.email.map(validate_email).transpose()?;
        Ok(Self {
            webhook,
            email,
            attempts,
            retry_delay,
        })
    }
}

/// `text` as one of `choices` (case and surrounding spaces aside); the error names them.
fn choose<T: Copy>(key: &str, what: &str, text: &str, choices: &[(&str, T)]) -> Result<T, Invalid> {
    let wanted = text.trim().to_ascii_lowercase();
    let found = choices.iter().find(|(name, _)| *name == wanted);
    found.map(|(_, value)| *value).ok_or_else(|| {
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        invalid(
            key,
            format!("'{text}' is not {what}: use {}", names.join(" or ")),
        )
    })
}

fn validate_url(url: String) -> Result<String, Invalid> {
    let key = "alerting.webhook";
    let parsed =
        url::Url::parse(&url).map_err(|e| invalid(key, format!("'{url}' is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(
            key,
            format!("'{url}' must be an http:// or https:// URL"),
        ));
    }
    Ok(url)
}

fn validate_retry_delay(text: &str) -> Result<Duration, Invalid> {
    let key = "alerting.retry_delay";
    let nanos = parse_span(text).map_err(|m| invalid(key, m))?;
    let delay = u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| invalid(key, format!("must not be negative, found '{text}'")))?;
    if delay > MAX_RETRY_WAIT {
        return Err(invalid(
            key,
            format!("'{text}' is longer than the longest wait, 1 minute"),
        ));
    }
    Ok(delay)
}

fn validate_email(file: EmailFile) -> Result<Email, Invalid> {
    let key = |name: &str| format!("alerting.email.{name}");
    let host = file.host.ok_or_else(|| {
        invalid(
            key("host"),
            "required: the SMTP server, such as \"smtp.example.com\"",
        )
    })?;
    if host.trim().is_empty() || host.contains(char::is_whitespace) {
        return Err(invalid(key("host"), format!("'{host}' is not a host name")));
    }
    let port = file.port.unwrap_or(DEFAULT_SMTP_PORT);
    if port == 0 {
        return Err(invalid(key("port"), "must be a port from 1 to 65535"));
    }
    let security = match file.security.as_deref() {
        None => SmtpSecurity::default(),
        Some(text) => choose(
            &key("security"),
            "a security",
            text,
            &[
                ("starttls", SmtpSecurity::StartTls),
                ("none", SmtpSecurity::None),
            ],
        )?,
    };
    let mailbox = |key: String, text: &str| {
        text.parse::<Mailbox>().map_err(|e| {
            invalid(
                key,
                format!("'{text}' is not an e-mail address such as \"ops@example.com\" or \"Ops <ops@example.com>\": {e}"),
            )
        })
    };
    let from = file
        .from
        .ok_or_else(|| invalid(key("from"), "required: the sender's address"))?;
    let from = mailbox(key("from"), &from)?;
    let to = file.to.ok_or_else(|| {
        invalid(
            key("to"),
            "required: a list of addresses such as [\"ops@example.com\"]",
        )
    })?;
    if to.is_empty() {
        return Err(invalid(key("to"), "must name at least one address"));
    }
    let to = to
        .iter()
        .enumerate()
        .map(|(i, text)| mailbox(key(&format!("to[{i}]")), text.as_str()))
        .collect::<Result<Vec<_>, _>>()?;
    let login = match (file.username, file.password_env) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                key("password_env"),
                "required with alerting.email.username: the name of the environment variable \
                 that holds the password",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                key("username"),
                "required with alerting.email.password_env",
            ));
        }
        (Some(username), Some(password_env)) => {
            let is_name = password_env
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && password_env
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !is_name {
                // not echoed: a password written here by mistake stays out of the logs
                return Err(invalid(
                    key("password_env"),
                    "must be the name of an environment variable (letters, digits and '_'), \
                     such as \"SMTP_PASSWORD\", never the password itself",
                ));
            }
            if security == SmtpSecurity::None {
                return Err(invalid(
                    key("username"),
                    "a login is never sent over an unencrypted connection (security = \"none\"): \
                     use security = \"starttls\"",
                ));
            }
            Some(SmtpLogin {
                username,
                password_env,
            })
        }
    };
    Ok(Email {
        host,
        port,
        security,
        from,
        to,
        login,
    })
}
