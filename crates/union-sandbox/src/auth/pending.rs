//! Grants waiting to be redeemed: authorization codes (PKCE flow) and device codes (device flow).
//!
//! In memory only: they live for seconds to minutes, and a restart merely makes a client start
//! its flow again. Expired entries are pruned whenever the map is touched, so nothing grows
//! without bound.

use std::collections::HashMap;

/// How long an authorization code can be redeemed (RFC 6749 §4.1.2 recommends at most 10 min).
pub const CODE_LIFETIME_SECS: u64 = 60;
/// How long a device code waits for the user (flytekit polls this long).
pub const DEVICE_LIFETIME_SECS: u64 = 600;
/// Seconds between device-flow polls we ask for.
pub const DEVICE_POLL_INTERVAL_SECS: u64 = 1;

/// An authorization code handed to the browser, redeemable once with its PKCE verifier.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    /// S256 challenge the verifier must hash to.
    pub code_challenge: String,
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub expires_at: u64,
}

/// What the user said about a device code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Waiting,
    Approved,
    Denied,
}

/// A device-flow grant: the client polls with the device code, the user decides with the user code.
#[derive(Debug, Clone)]
pub struct DeviceGrant {
    /// Eight letters, without the dash shown to the user.
    pub user_code: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub expires_at: u64,
    pub decision: Decision,
}

/// The answer to a device-code poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// Never issued, already redeemed, or pruned after expiring.
    Unknown,
    /// Issued to another client.
    WrongClient,
    Waiting,
    Denied,
    Expired,
    /// Approved: issue tokens with these scopes (the grant is gone now).
    Approved(Vec<String>),
}

/// Codes waiting to be redeemed.
#[derive(Debug, Default)]
pub struct Pending {
    codes: HashMap<String, AuthCode>,
    /// By device code.
    devices: HashMap<String, DeviceGrant>,
}

/// A user code as people type it: any case, with or without the dash and spaces.
pub fn normalize_user_code(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// `BCDF-GHJK`, as shown to people.
pub fn display_user_code(code: &str) -> String {
    if code.len() == 8 && code.is_ascii() {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_string()
    }
}

impl Pending {
    fn prune(&mut self, now: u64) {
        self.codes.retain(|_, c| now < c.expires_at);
        self.devices.retain(|_, d| now < d.expires_at);
    }

    /// Remember a new authorization code.
    pub fn insert_code(&mut self, code: String, grant: AuthCode, now: u64) {
        self.prune(now);
        self.codes.insert(code, grant);
    }

    /// Take a code out, whatever happens next: a code is redeemed at most once, and a failed
    /// attempt (wrong verifier) burns it too, as RFC 6749 §10.5 asks.
    pub fn take_code(&mut self, code: &str, now: u64) -> Option<AuthCode> {
        let taken = self.codes.remove(code);
        self.prune(now);
        taken
    }

    /// Remember a new device grant.
    pub fn insert_device(&mut self, device_code: String, grant: DeviceGrant, now: u64) {
        self.prune(now);
        self.devices.insert(device_code, grant);
    }

    /// The grant a user code names, if it is still waiting to be used.
    pub fn device_by_user_code(&mut self, user_code: &str, now: u64) -> Option<&mut DeviceGrant> {
        self.prune(now);
        let wanted = normalize_user_code(user_code);
        self.devices
            .values_mut()
            .find(|d| d.user_code.as_bytes() == wanted.as_bytes())
    }

    /// A client's poll: looked at before pruning, so that a poll just after expiry says so.
    pub fn poll_device(&mut self, device_code: &str, client_id: &str, now: u64) -> Poll {
        let poll = match self.devices.get(device_code) {
            None => Poll::Unknown,
            Some(d) if d.client_id != client_id => Poll::WrongClient,
            Some(d) if now >= d.expires_at => Poll::Expired,
            Some(d) => match d.decision {
                Decision::Waiting => Poll::Waiting,
                Decision::Denied => Poll::Denied,
                Decision::Approved => Poll::Approved(d.scopes.clone()),
            },
        };
        if matches!(poll, Poll::Denied | Poll::Approved(_) | Poll::Expired) {
            self.devices.remove(device_code);
        }
        self.prune(now);
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(expires_at: u64) -> DeviceGrant {
        DeviceGrant {
            user_code: "BCDFGHJK".into(),
            client_id: "flytectl".into(),
            scopes: vec!["all".into()],
            expires_at,
            decision: Decision::Waiting,
        }
    }

    #[test]
    fn a_code_is_taken_once_and_expired_ones_are_pruned() {
        let mut p = Pending::default();
        let code = |expires_at| AuthCode {
            client_id: "flytectl".into(),
            redirect_uri: "http://localhost:53593/callback".into(),
            code_challenge: "x".into(),
            scopes: vec![],
            expires_at,
        };
        p.insert_code("a".into(), code(100), 0);
        p.insert_code("b".into(), code(10), 0);
        assert!(p.take_code("a", 50).is_some());
        assert!(p.take_code("a", 50).is_none());
        // Pruned by the take at 50.
        assert!(p.take_code("b", 5).is_none());
    }

    #[test]
    fn a_device_grant_waits_then_is_redeemed_once() {
        let mut p = Pending::default();
        p.insert_device("dev".into(), device(600), 0);
        assert_eq!(p.poll_device("dev", "flytectl", 1), Poll::Waiting);
        assert_eq!(p.poll_device("dev", "other", 1), Poll::WrongClient);
        p.device_by_user_code("bcdf-ghjk", 2).unwrap().decision = Decision::Approved;
        assert_eq!(
            p.poll_device("dev", "flytectl", 3),
            Poll::Approved(vec!["all".into()])
        );
        assert_eq!(p.poll_device("dev", "flytectl", 4), Poll::Unknown);
    }

    #[test]
    fn a_device_grant_expires_and_can_be_denied() {
        let mut p = Pending::default();
        p.insert_device("dev".into(), device(600), 0);
        assert_eq!(p.poll_device("dev", "flytectl", 600), Poll::Expired);
        assert_eq!(p.poll_device("dev", "flytectl", 601), Poll::Unknown);
        p.insert_device("dev2".into(), device(600), 0);
        p.device_by_user_code("BCDFGHJK", 1).unwrap().decision = Decision::Denied;
        assert_eq!(p.poll_device("dev2", "flytectl", 2), Poll::Denied);
        assert!(p.device_by_user_code("BCDFGHJK", 2).is_none());
    }

    #[test]
    fn user_codes_are_read_as_people_type_them() {
        assert_eq!(normalize_user_code(" bcdf-ghjk "), "BCDFGHJK");
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
    }
}
