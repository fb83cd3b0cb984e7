//! Portcullis' traffic simulator.
//!
//! Produces an organisation's login traffic, with attacks mixed in, as the real log
//! formats Portcullis reads, together with the ground truth: which source is who, which
//! campaign ran when, which accounts fell. Operators use it to rehearse ("what would
//! Portcullis have made of our setup?") and to load-test; the project uses it to measure
//! detection against known truth.
//!
//! Everything is a pure function of the scenario and the seed: the same seed gives
//! byte-identical files, whatever the number of threads, because time is cut into
//! ten-minute slots and each slot draws from its own random stream.
//!
//! This crate does not open files or sockets; the binary does.
//!
//! # Layout
//! - [`scenario`]: the TOML scenario schema and the built-in scenarios.
//! - [`population`]: accounts, their devices and the addresses they log in from.
//! - [`benign`]: the organisation's ordinary traffic, slot by slot.
//! - [`campaign`]: attacks compiled into deterministic schedules.
//! - [`render`]: attempts and noise written as the servers log them: Dovecot, Postfix,
//!   OpenSSH, Exchange's IIS log, Entra ID sign-ins, Windows Security events, OpenVPN.
//! - [`truth`]: the ground truth written beside the logs.
//! - [`score`]: a report scored against the truth (`portcullis eval`).
#![deny(missing_docs)]

pub mod benign;
pub mod campaign;
pub mod population;
pub mod render;
mod rng;
pub mod scenario;
pub mod score;
pub mod truth;

use std::io;
use std::net::IpAddr;

use jiff::tz::TimeZone;
use portcullis_core::account::AccountRules;
use portcullis_core::{Event, EventTime, Outcome, Protocol};

pub use scenario::{Scenario, ScenarioError};
pub use truth::{Truth, TruthBuilder};

use crate::campaign::Campaign;
use crate::population::Population;
use crate::scenario::{Format, Service, StampStyle};

/// How the parsers turn a logged name into an account by default.
static ACCOUNTS: std::sync::LazyLock<AccountRules> =
    std::sync::LazyLock::new(AccountRules::default);

/// Length of one generation slot.
pub const SLOT_MS: i64 = 10 * 60 * 1000;

/// Who made an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// An ordinary user, logging in from an address of this kind.
    Benign(population::SourceKind),
    /// An attacker in the campaign with this index.
    Attacker(u16),
}

/// Who an attempt names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A real account, by index.
    Account(u32),
    /// A name that does not exist here: index into the campaign's made-up names.
    Unknown(u32, u16),
}

/// One simulated login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The door.
    pub service: Service,
    /// The client's address.
    pub source: IpAddr,
    /// The client's port.
    pub port: u16,
    /// The name tried.
    pub target: Target,
    /// What happened.
    pub outcome: Outcome,
    /// Who tried.
    pub actor: Actor,
    /// Seed for ids (session, pid, queue id) in the rendered lines.
    pub tag: u64,
}

/// Options that change a scenario's size or time without editing it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Seed of every random choice.
    pub seed: u64,
    /// Multiplies benign volume (logins and deliveries), for throughput tests.
    pub scale: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 1,
            scale: 1.0,
        }
    }
}

/// A scenario ready to generate.
#[derive(Debug)]
pub struct Simulation {
    scenario: Scenario,
    options: Options,
    zone: TimeZone,
    start_ms: i64,
    end_ms: i64,
    population: Population,
    campaigns: Vec<Campaign>,
}

/// One slot's output: rendered lines per format, and the attempts (for the truth and
/// for sending them live).
#[derive(Debug, Default)]
pub struct SlotOutput {
    /// The bytes of each format, by [`Format::index`].
    pub files: [Vec<u8>; Format::ALL.len()],
    /// The attempts, in time order.
    pub attempts: Vec<Attempt>,
    /// Lines written, all formats.
    pub lines: u64,
}

impl SlotOutput {
    /// The bytes of one format.
    pub fn bytes(&self, f: Format) -> &[u8] {
        &self.files[f.index()]
    }
}

impl Simulation {
    /// Prepares a scenario: draws the population and compiles the attacks.
    pub fn new(scenario: Scenario, options: Options) -> Result<Self, ScenarioError> {
        if !(options.scale > 0.0 && options.scale <= 10_000.0) {
            return Err(ScenarioError(format!(
                "scale must be above 0 and at most 10000, not {}",
                options.scale
            )));
        }
        let zone = scenario.zone()?;
        let start_ms = scenario.start.as_millisecond();
        let end_ms = start_ms + i64::from(scenario.hours) * 3_600_000;
        let mut population = Population::draw(&scenario, options.seed, start_ms, end_ms);
        let campaigns = scenario
            .attacks
            .iter()
            .enumerate()
            .map(|(i, a)| {
                Campaign::compile(i, a, &scenario, &mut population, options.seed, start_ms)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            scenario,
            options,
            zone,
            start_ms,
            end_ms,
            population,
            campaigns,
        })
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The drawn population.
    pub fn population(&self) -> &Population {
        &self.population
    }

    /// The compiled campaigns.
    pub fn campaigns(&self) -> &[Campaign] {
        &self.campaigns
    }

    /// How many slots the scenario spans.
    pub fn slots(&self) -> usize {
        ((self.end_ms - self.start_ms + SLOT_MS - 1) / SLOT_MS) as usize
    }

    /// The account name (or made-up name) an attempt tried.
    pub fn name_of(&self, target: Target) -> String {
        match target {
            Target::Account(i) => self.population.accounts[i as usize].name.clone(),
            Target::Unknown(i, c) => {
                self.campaigns[usize::from(c)].unknown_name(i, &self.scenario.organisation.domain)
            }
        }
    }

    /// The event an attempt is, as its server's log reads back, stamped `time` (the
    /// attempt's own time, or the moment it is sent live). What a log does not tell is
    /// left out as the parser leaves it out: Postfix and OpenVPN log no user for a
    /// failed login, Dovecot, Postfix and IIS no client port; Postfix, OpenVPN and Exchange's doors
    /// answer an unknown name as a wrong password (IIS as Windows does).
    pub fn event(&self, a: &Attempt, time: EventTime) -> Event {
        use portcullis_core::Service as Logged;
        let service = match a.service {
            Service::Imap | Service::Pop3 => Logged::Dovecot,
            Service::Smtp => Logged::Postfix,
            Service::Ssh => Logged::Sshd,
            Service::Owa | Service::Activesync | Service::ExchangeImap => Logged::Exchange,
            Service::Entra => Logged::Entra,
            Service::Vpn => Logged::Openvpn,
            Service::Rdp => Logged::Windows,
            Service::Sso => Logged::Keycloak,
        };
        let outcome = match (a.service, a.outcome) {
            (
                Service::Smtp
                | Service::Owa
                | Service::Activesync
                | Service::Vpn
                | Service::ExchangeImap,
                Outcome::Failure(_),
            ) => Outcome::Failure(portcullis_core::Reason::BadPassword),
            // Keycloak's errors tell these two apart; any other failure is written as
            // `invalid_user_credentials`.
            (Service::Sso, Outcome::Failure(r))
                if !matches!(
                    r,
                    portcullis_core::Reason::UnknownAccount | portcullis_core::Reason::Locked
                ) =>
            {
                Outcome::Failure(portcullis_core::Reason::BadPassword)
            }
            (_, o) => o,
        };
        let mut e = Event::new(service, outcome);
        e.time = Some(time);
        e.protocol = match a.service {
            // A failure is read from Dovecot's auth-worker line, which does not say
            // which protocol the client spoke.
            Service::Imap | Service::Pop3 if a.outcome.is_failure() => None,
            Service::Imap | Service::ExchangeImap => Some(Protocol::Imap),
            Service::Pop3 => Some(Protocol::Pop3),
            Service::Smtp => Some(Protocol::Smtp),
            Service::Ssh => Some(Protocol::Ssh),
            Service::Owa | Service::Activesync | Service::Sso => Some(Protocol::Http),
            Service::Entra => Some(render::entra::client_app(a).1),
            Service::Vpn | Service::Rdp => None,
        };
        e.source = Some(a.source);
        e.port = match a.service {
            // Dovecot's summary and Postfix's lines here carry no client port, IIS's
            // default fields none either.
            Service::Imap | Service::Pop3 | Service::Smtp => None,
            Service::Owa | Service::Activesync | Service::Entra | Service::Sso => None,
            Service::Vpn if a.source.is_ipv6() => None,
            _ => Some(a.port),
        };
        let silent = matches!(a.service, Service::Smtp | Service::Vpn) && a.outcome.is_failure();
        if !silent {
            let name = render::shown_name(self, a);
            e.account = ACCOUNTS.canonical(&name);
            e.user = Some(name);
        }
        e.host = match a.service.format() {
            Format::Exchange | Format::Entra | Format::Keycloak | Format::ExchangeImap => None,
            _ => Some(self.scenario.output.host.clone()),
        };
        if a.service == Service::Sso {
            e.session = render::keycloak::session(a);
        }
        if a.service == Service::ExchangeImap {
            e.session = Some(render::exchange_imap::session(a));
        }
        if a.service == Service::Entra {
            e.session = Some(render::entra::correlation_id(a.tag));
            if a.outcome == Outcome::Success && self.stopped_by_mfa(a) {
                e.second_factor = Some(portcullis_core::SecondFactor::Required);
            }
        }
        e
    }

    /// The event an attempt reads back as from the file it was written to, its time as
    /// precise as that format writes it: syslog and IIS stamps to the second (ISO-8601
    /// syslog stamps and winlogbeat to the millisecond), IIS and Entra in UTC.
    pub fn logged_event(&self, a: &Attempt) -> Event {
        let ms = match (a.service.format(), self.scenario.output.stamp) {
            (Format::Windows | Format::Keycloak | Format::ExchangeImap, _)
            | (Format::Mail | Format::Ssh | Format::Openvpn, StampStyle::Iso8601) => a.at_ms,
            _ => a.at_ms.div_euclid(1000) * 1000,
        };
        let instant = jiff::Timestamp::from_millisecond(ms).unwrap_or_default();
        let offset = match a.service.format() {
            Format::Mail | Format::Ssh | Format::Openvpn => self.zone.to_offset(instant),
            _ => jiff::tz::Offset::UTC,
        };
        let mut e = self.event(a, EventTime { instant, offset });
        e.session = match a.service {
            Service::Imap | Service::Pop3 => Some(render::session(a.tag)),
            Service::Entra | Service::Sso | Service::ExchangeImap => e.session,
            _ => None,
        };
        e
    }

    /// Whether a success is an attacker's stopped by the account's second factor (Entra
    /// ID only: the other doors here ask for none).
    pub fn stopped_by_mfa(&self, a: &Attempt) -> bool {
        a.service == Service::Entra
            && matches!(a.actor, Actor::Attacker(_))
            && matches!(a.target, Target::Account(i) if self.population.accounts[i as usize].mfa)
    }

    /// Generates and renders one slot. Slots are independent: any order, any thread.
    pub fn slot(&self, k: usize) -> SlotOutput {
        let s0 = self.start_ms + k as i64 * SLOT_MS;
        let s1 = (s0 + SLOT_MS).min(self.end_ms);
        let mut attempts = Vec::new();
        let mut deliveries = Vec::new();
        benign::slot(self, k as u64, s0, s1, &mut attempts, &mut deliveries);
        for c in &self.campaigns {
            c.slot(&self.population, s0, s1, &mut attempts);
        }
        attempts.sort_by_key(|a| (a.at_ms, a.tag));
        deliveries.sort_unstable();
        let mut out = SlotOutput::default();
        render::slot(self, k, &attempts, &deliveries, &mut out);
        out.attempts = attempts;
        out
    }
}

/// Slots generated at once (in parallel) before they are written in order.
const BATCH: usize = 8;

/// Generates every slot, in parallel batches, and hands them to `write` in time order.
/// Returns what the truth needs; `write` may stop the run by returning an error.
pub fn generate(
    sim: &Simulation,
    mut write: impl FnMut(&SlotOutput) -> io::Result<()>,
) -> io::Result<TruthBuilder> {
    use rayon::prelude::*;
    let mut truth = TruthBuilder::new(sim);
    let slots = sim.slots();
    let mut k = 0;
    while k < slots {
        let end = (k + BATCH).min(slots);
        let outs: Vec<SlotOutput> = (k..end).into_par_iter().map(|i| sim.slot(i)).collect();
        for out in &outs {
            write(out)?;
            truth.add(&out.attempts, out.lines);
        }
        k = end;
    }
    Ok(truth)
}
