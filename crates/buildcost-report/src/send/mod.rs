//! `buildcost report weekly --send`: each route's report to its destinations, exactly once
//! (spec section 14).
//!
//! A destination is named `<team|summary>/<e-mail address|teams|slack>`; a delivery is
//! identified by (week, report, destination) and recorded in the store under
//! `deliveries/<week>/` once it succeeded, so a second `--send` of the week sends nothing
//! already delivered (`--resend` sends again). A route naming a team below the minimum size
//! (or a team with no report this week) gets nothing, with a warning naming the route.

pub mod message;
pub mod transport;

use std::path::{Path, PathBuf};

use buildcost_model::{check_webhook_url, DeliveryConfig, Route, Secret};
use buildcost_store::Store;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use message::Digest;
pub use transport::{SmtpConfig, SmtpTls, MAX_ATTEMPTS, RETRY_BUDGET};

use crate::contents::WeeklyReport;
use crate::format::Format;

/// The kind of a destination.
#[derive(Debug, Clone, PartialEq)]
pub enum Channel {
    Email(String),
    Teams { url: Secret, bare: bool },
    Slack(Secret),
}

impl Channel {
    fn name(&self) -> &str {
        match self {
            Channel::Email(address) => address,
            Channel::Teams { .. } => "teams",
            Channel::Slack(_) => "slack",
        }
    }
}

/// One message to send: a report to a destination.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `summary` or the team.
    pub report: String,
    /// `<report>/<address|teams|slack>`.
    pub destination: String,
    pub channel: Channel,
    /// The route's index, for messages (`delivery.route[2]`).
    pub route: usize,
}

/// What happened to a destination.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Sent {
        attempts: u32,
    },
    AlreadyDelivered {
        at: String,
    },
    Failed {
        attempts: u32,
        error: String,
    },
    /// `--dry-run`: the message was written to this file.
    Written(PathBuf),
}

/// The result for one destination.
#[derive(Debug, Clone)]
pub struct Served {
    pub destination: String,
    pub outcome: Outcome,
}

/// A route that got nothing this week, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub route: usize,
    pub report: String,
    pub why: String,
}

/// How to send.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// Send to every destination again, delivered or not.
    pub resend: bool,
    /// Write each message into this folder instead of sending it (nothing is recorded).
    pub dry_run: Option<PathBuf>,
    /// The wait before the second attempt (tests shorten it).
    pub first_backoff: Option<std::time::Duration>,
}

/// The record of a delivery, under `deliveries/<week>/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub week: String,
    pub report: String,
    pub destination: String,
    pub delivered_at: String,
    pub attempts: u32,
}

/// The store key of the record of (`week`, `destination`): the destination's hash, so no
/// address is a file name.
pub fn record_key(week: crate::IsoWeek, destination: &str) -> String {
    let hash = hex::encode(&Sha256::digest(destination.as_bytes())[..12]);
    format!("deliveries/{week}/{hash}.json")
}

/// The destinations of `routes` for `report`'s week; routes whose report does not exist or
/// is a small team's are skipped (with why). `is_small` tells whether a team name is a team
/// below the minimum size.
pub fn plan(
    report: &WeeklyReport,
    delivery: &DeliveryConfig,
    is_small: &dyn Fn(&str) -> bool,
) -> (Vec<Delivery>, Vec<Skipped>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (i, route) in delivery.route.iter().enumerate() {
        let name = route.report();
        if name != "summary" && report.team(&name).is_none() {
            let why = if is_small(&name) {
                "the team has fewer developers than privacy.min_team_size: its figures are only in merged rows, so nothing is sent".to_owned()
            } else {
                format!(
                    "no team `{name}` with builds in the 28 days to the end of {}",
                    report.week
                )
            };
            skipped.push(Skipped {
                route: i,
                report: name,
                why,
            });
            continue;
        }
        for channel in channels(route) {
            out.push(Delivery {
                destination: format!("{name}/{}", channel.name()),
                report: name.clone(),
                channel,
                route: i,
            });
        }
    }
    (out, skipped)
}

fn channels(route: &Route) -> Vec<Channel> {
    let mut out: Vec<Channel> = route.email.iter().cloned().map(Channel::Email).collect();
    if let Some(url) = &route.teams_webhook {
        out.push(Channel::Teams {
            url: url.clone(),
            bare: route.teams_bare_card,
        });
    }
    if let Some(url) = &route.slack_webhook {
        out.push(Channel::Slack(url.clone()));
    }
    out
}

/// The digest, HTML body, and CSV of `report_name` in `report`.
fn contents(
    report: &WeeklyReport,
    name: &str,
    base: Option<&str>,
) -> crate::Result<(Digest, String)> {
    if name == "summary" {
        Ok((
            Digest::summary(report, base),
            crate::render_summary(report, Format::Csv)?,
        ))
    } else {
        let team = report
            .team(name)
            .ok_or_else(|| crate::Error::Send(format!("no report of `{name}`")))?;
        Ok((
            Digest::team(team, base),
            crate::render_team(team, Format::Csv)?,
        ))
    }
}

/// What one delivery sends, ready to go.
enum Ready {
    Email(transport::Email),
    Webhook {
        url: String,
        body: serde_json::Value,
    },
}

fn prepare(d: &Delivery, report: &WeeklyReport, config: &DeliveryConfig) -> Result<Ready, String> {
    let (digest, csv) = contents(report, &d.report, config.report_base_url.as_deref())
        .map_err(|e| e.to_string())?;
    // A webhook's URL, read from its secret now and checked as the configuration's are.
    let webhook = |url: &Secret, setting: &str| -> Result<String, String> {
        let key = format!("delivery.route[{}].{setting}", d.route);
        let url = url.read(&key).map_err(|e| e.to_string())?;
        check_webhook_url(&url, config.allow_http, &key).map_err(|e| e.to_string())?;
        Ok(url)
    };
    Ok(match &d.channel {
        Channel::Email(to) => Ready::Email(transport::Email {
            to: to.clone(),
            subject: digest.headline(),
            html: message::email_html(&digest),
            text: digest.text(),
            attachments: vec![(
                format!("{}-{}.csv", d.report, report.week),
                "text/csv; charset=utf-8".into(),
                csv.into_bytes(),
            )],
        }),
        Channel::Teams { url, bare } => Ready::Webhook {
            url: webhook(url, "teams_webhook")?,
            body: message::teams_payload(&digest, *bare),
        },
        Channel::Slack(url) => Ready::Webhook {
            url: webhook(url, "slack_webhook")?,
            body: message::slack_payload(&digest),
        },
    })
}

/// A file name for a destination (dry runs).
fn file_name(destination: &str, ext: &str) -> String {
    format!("{}.{ext}", crate::contents::file_safe(destination, "-_.@"))
}

/// Sends `deliveries` of `report`, recording each success in `store`.
///
/// # Errors
/// Only when the runtime cannot start; each destination's failure is in the summary.
pub fn send(
    report: &WeeklyReport,
    deliveries: Vec<Delivery>,
    config: &DeliveryConfig,
    smtp: &SmtpConfig,
    store: &Store,
    options: &SendOptions,
) -> crate::Result<Vec<Served>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::Error::Send(format!("cannot start the runtime: {e}")))?;
    // lettre's pool starts its tasks when the transport is built and dropped: inside the
    // runtime (declared before the transport, so dropped after it).
    let _inside = runtime.enter();
    let backoff = options.first_backoff.unwrap_or(transport::FIRST_BACKOFF);
    let mut served = Vec::new();
    let client = transport::http_client();
    let mut mailer = None;
    for d in deliveries {
        let key = record_key(report.week, &d.destination);
        if !options.resend && options.dry_run.is_none() {
            if let Ok(Some(bytes)) = store.read_blob(&key) {
                if let Ok(r) = serde_json::from_slice::<Record>(&bytes) {
                    served.push(Served {
                        destination: d.destination,
                        outcome: Outcome::AlreadyDelivered { at: r.delivered_at },
                    });
                    continue;
                }
            }
        }
        let failed = |error: String| Served {
            destination: d.destination.clone(),
            outcome: Outcome::Failed { attempts: 0, error },
        };
        let ready = match prepare(&d, report, config) {
            Ok(r) => r,
            Err(e) => {
                served.push(failed(e));
                continue;
            }
        };
        if let Some(dir) = &options.dry_run {
            let (name, bytes) = match &ready {
                Ready::Email(email) => {
                    let from = smtp
                        .from
                        .as_deref()
                        .unwrap_or("buildcost <buildcost@localhost>")
                        .parse()
                        .map_err(|e| crate::Error::Send(format!("smtp.from: {e}")));
                    let message =
                        from.and_then(|from| email.message(&from).map_err(crate::Error::Send));
                    match message {
                        Ok(m) => (file_name(&d.destination, "eml"), m.formatted()),
                        Err(e) => {
                            served.push(failed(e.to_string()));
                            continue;
                        }
                    }
                }
                Ready::Webhook { body, .. } => (
                    file_name(&d.destination, "json"),
                    serde_json::to_vec_pretty(body).unwrap_or_default(),
                ),
            };
            let path = dir.join(name);
            let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, bytes));
            served.push(Served {
                destination: d.destination,
                outcome: match written {
                    Ok(()) => Outcome::Written(path),
                    Err(e) => Outcome::Failed {
                        attempts: 0,
                        error: format!("cannot write {}: {e}", path.display()),
                    },
                },
            });
            continue;
        }
        let tried = match ready {
            Ready::Email(email) => {
                // One connection (pool) for every address, opened at the first e-mail.
                let mailer =
                    mailer.get_or_insert_with(|| smtp.connect().map_err(|e| e.to_string()));
                let (from, transport) = match mailer {
                    Ok(m) => &*m,
                    Err(e) => {
                        served.push(failed(e.clone()));
                        continue;
                    }
                };
                let message = match email.message(from) {
                    Ok(m) => m,
                    Err(e) => {
                        served.push(failed(e));
                        continue;
                    }
                };
                runtime.block_on(transport::with_retries(
                    || transport::send_email(transport, message.clone()),
                    backoff,
                ))
            }
            Ready::Webhook { url, body } => {
                let client = match &client {
                    Ok(c) => c,
                    Err(e) => {
                        served.push(failed(e.clone()));
                        continue;
                    }
                };
                runtime.block_on(transport::with_retries(
                    || transport::post_json(client, &url, &body),
                    backoff,
                ))
            }
        };
        let outcome = match tried.error {
            None => {
                let record = Record {
                    week: report.week.to_string(),
                    report: d.report.clone(),
                    destination: d.destination.clone(),
                    delivered_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    attempts: tried.attempts,
                };
                let bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
                if let Err(e) = store.write_blob(&key, &bytes) {
                    // Sent but not recorded: the next --send would send it again; say so.
                    tracing::error!(destination = %d.destination, error = %e, "sent, but the delivery could not be recorded: a later --send sends it again");
                }
                Outcome::Sent {
                    attempts: tried.attempts,
                }
            }
            Some(error) => Outcome::Failed {
                attempts: tried.attempts,
                error,
            },
        };
        served.push(Served {
            destination: d.destination,
            outcome,
        });
    }
    Ok(served)
}

/// The folder a dry run writes into by default.
pub fn default_outbox(week: crate::IsoWeek) -> PathBuf {
    Path::new("reports").join(week.to_string()).join("outbox")
}
