//! Where rendered emails go: SMTP (lettre over rustls), `.eml` files, the log, or memory (tests).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::templates::RenderedEmail;
use crate::config::{EmailSettings, EmailTransport, SmtpTls};

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: connection refused, timeout, 4xx.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Retrying will not help: a bad address, a 5xx rejection.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    File {
        dir: PathBuf,
        from: Mailbox,
    },
    Log {
        from: Mailbox,
    },
    /// Keeps messages in memory: for tests of what would be sent.
    Memory {
        from: Mailbox,
        sent: Arc<Mutex<Vec<Message>>>,
    },
}

impl Mailer {
    pub fn from_settings(settings: &EmailSettings) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|error| anyhow::anyhow!("email.from is not an address: {error}"))?;
        Ok(match settings.transport {
            EmailTransport::Smtp => {
                let host = settings.smtp_host.as_str();
                let tls_parameters = || -> anyhow::Result<TlsParameters> {
                    let mut parameters = TlsParameters::builder(host.to_owned());
                    if !settings.smtp_ca_certificate.is_empty() {
                        let pem =
                            std::fs::read(&settings.smtp_ca_certificate).map_err(|error| {
                                anyhow::anyhow!("reading email.smtp_ca_certificate: {error}")
                            })?;
                        parameters = parameters.add_root_certificate(Certificate::from_pem(&pem)?);
                    }
                    Ok(parameters.build_rustls()?)
                };
                // Certificates are always verified; there is no setting to turn that off.
                let plain = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host);
                let mut builder = match settings.smtp_tls {
                    SmtpTls::Starttls => plain.tls(Tls::Required(tls_parameters()?)),
                    SmtpTls::Implicit => plain.tls(Tls::Wrapper(tls_parameters()?)),
                    SmtpTls::None => plain,
                }
                .port(settings.smtp_port)
                .timeout(Some(Duration::from_secs(settings.smtp_timeout_seconds)));
                if !settings.smtp_username.is_empty() {
                    builder = builder.credentials(Credentials::new(
                        settings.smtp_username.clone(),
                        settings.smtp_password.expose_secret().to_owned(),
                    ));
                }
                Self::Smtp {
                    transport: builder.build(),
                    from,
                }
            }
            EmailTransport::File => Self::File {
                dir: settings.file_dir.clone(),
                from,
            },
            EmailTransport::Log => Self::Log { from },
        })
    }

    /// A mailer that keeps what it sends, with the configured sender.
    pub fn memory(settings: &EmailSettings) -> anyhow::Result<(Self, Arc<Mutex<Vec<Message>>>)> {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let from = settings
            .from
            .parse()
            .map_err(|error| anyhow::anyhow!("email.from is not an address: {error}"))?;
        Ok((
            Self::Memory {
                from,
                sent: sent.clone(),
            },
            sent,
        ))
    }

    fn from(&self) -> &Mailbox {
        match self {
            Self::Smtp { from, .. }
            | Self::File { from, .. }
            | Self::Log { from }
            | Self::Memory { from, .. } => from,
        }
    }

    /// Builds the message with a Message-ID derived from the outbox row, so a message that is sent
    /// again after a crash is recognisably the same message.
    pub fn build(
        &self,
        id: Uuid,
        recipient: &str,
        email: &RenderedEmail,
    ) -> Result<Message, SendError> {
        let to: Mailbox = recipient
            .parse()
            .map_err(|_| SendError::Permanent("the recipient is not a valid address".to_owned()))?;
        Message::builder()
            .from(self.from().clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(format!("<{id}@madoguchi>")))
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|error| SendError::Permanent(format!("building the message: {error}")))
    }

    pub async fn send(&self, id: Uuid, message: Message) -> Result<(), SendError> {
        match self {
            Self::Smtp { transport, .. } => match transport.send(message).await {
                Ok(_) => Ok(()),
                Err(error) if error.is_permanent() => Err(SendError::Permanent(
                    error
                        .status()
                        .map_or_else(|| "rejected".to_owned(), |code| format!("smtp {code}")),
                )),
                Err(error) => Err(SendError::Temporary(error.status().map_or_else(
                    || "connection or timeout".to_owned(),
                    |code| format!("smtp {code}"),
                ))),
            },
            Self::File { dir, .. } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|error| SendError::Temporary(format!("mail directory: {error}")))?;
                tokio::fs::write(dir.join(format!("{id}.eml")), message.formatted())
                    .await
                    .map_err(|error| SendError::Temporary(format!("writing the message: {error}")))
            }
            Self::Log { .. } => {
                tracing::info!(message_id = %id, "email (log transport, not sent)");
                Ok(())
            }
            Self::Memory { sent, .. } => {
                if let Ok(mut sent) = sent.lock() {
                    sent.push(message);
                }
                Ok(())
            }
        }
    }
}
