//! Passwords: how an owner signs in from a device that has no key of theirs (a second machine, `nc`).
//!
//! Hashes are argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane: about 20 ms here), computed off
//! the async threads and at most [`hashing_at_once`] at a time, so a storm of logins costs a bounded share
//! of the CPU and memory. Wrong guesses are throttled per (name, address) and per address with an
//! exponential back-off: a guesser from one address soon waits minutes per try, while the owner from
//! another address signs in at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand_core::OsRng;
use tokio::sync::Semaphore;

/// Hashes computed at once, server-wide: half the cores, so a storm of logins leaves the chat the other
/// half (on 2 cores, one hash at a time: about 20 ms each).
pub fn hashing_at_once() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Shortest and longest password accepted, in characters and bytes.
pub const MIN_CHARS: usize = 8;
pub const MAX_BYTES: usize = 256;

/// Wrong guesses allowed per (name, address), and per address over all names, before back-off starts.
const FREE_PER_NAME: u32 = 3;
const FREE_PER_ADDRESS: u32 = 10;
/// The back-off doubles per further wrong guess, from one second up to this.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Remembered failures are forgotten after this long without another.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

#[derive(Clone, Copy)]
struct Attempts {
    failures: u32,
    /// No attempt is checked before this.
    until: Instant,
    last: Instant,
}

#[derive(Default)]
struct Throttle {
    per_name: HashMap<(String, IpAddr), Attempts>,
    per_address: HashMap<IpAddr, Attempts>,
}

/// The server's password checking: hashing and throttling.
pub struct Passwords {
    hashing: Semaphore,
    throttle: Mutex<Throttle>,
    /// When each address last claimed names, for [`CLAIMS_PER_WINDOW`].
    claims: Mutex<HashMap<IpAddr, std::collections::VecDeque<Instant>>>,
}

/// Names one address may come to own per [`CLAIM_WINDOW`] (Ergo allows the same).
pub const CLAIMS_PER_WINDOW: usize = 30;
pub const CLAIM_WINDOW: Duration = Duration::from_secs(10 * 60);

impl Default for Passwords {
    fn default() -> Self {
        Self {
            hashing: Semaphore::new(hashing_at_once()),
            throttle: Mutex::default(),
            claims: Mutex::default(),
        }
    }
}

/// Why a password cannot be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weak {
    TooShort,
    TooLong,
}

/// Checks a new password's length: at least `min` characters (the server's `--password-min-chars`,
/// [`MIN_CHARS`] unless its operator says otherwise).
pub fn acceptable(password: &str, min: usize) -> Result<(), Weak> {
    if password.chars().count() < min {
        Err(Weak::TooShort)
    } else if password.len() > MAX_BYTES {
        Err(Weak::TooLong)
    } else {
        Ok(())
    }
}

fn wait_for(failures: u32, free: u32) -> Duration {
    match failures.checked_sub(free + 1) {
        None => Duration::ZERO,
        Some(over) => Duration::from_secs(1u64 << over.min(20)).min(MAX_WAIT),
    }
}

impl Passwords {
    /// The argon2id hash (PHC string) of `password`, with a fresh salt.
    pub async fn hash(&self, password: String) -> Option<String> {
        let _turn = self.hashing.acquire().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .ok()
                .map(|h| h.to_string())
        })
        .await
        .ok()
        .flatten()
    }

    /// [`Passwords::hash`] on this thread (for `natter admin`, which has no async runtime to spare).
    pub fn hash_blocking(password: &str) -> Option<String> {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .ok()
            .map(|h| h.to_string())
    }

    /// Whether `password` matches the stored hash (compared in constant time by argon2).
    pub async fn verify(&self, password: String, hash: String) -> bool {
        let Ok(_turn) = self.hashing.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false)
    }

    /// `Err(wait)` if a guess for `name` from `ip` must wait that long before it is even checked.
    pub fn check(&self, name: &str, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let throttle = self.throttle.lock().unwrap_or_else(|e| e.into_inner());
        let waits = [
            throttle.per_name.get(&(name.to_owned(), ip)),
            throttle.per_address.get(&ip),
        ];
        let until = waits.into_iter().flatten().map(|a| a.until).max();
        match until {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a wrong guess; returns how long the next guess for `name` from `ip` must wait.
    pub fn failed(&self, name: &str, ip: IpAddr, now: Instant) -> Duration {
        let mut throttle = self.throttle.lock().unwrap_or_else(|e| e.into_inner());
        if throttle.per_name.len() > 10_000 {
            throttle
                .per_name
                .retain(|_, a| now.duration_since(a.last) < FORGET_AFTER);
            throttle
                .per_address
                .retain(|_, a| now.duration_since(a.last) < FORGET_AFTER);
        }
        let bump = |attempts: &mut Attempts, free: u32| {
            if now.duration_since(attempts.last) >= FORGET_AFTER {
                attempts.failures = 0;
            }
            attempts.failures += 1;
            attempts.last = now;
            attempts.until = now + wait_for(attempts.failures, free);
            attempts.until
        };
        let fresh = Attempts {
            failures: 0,
            until: now,
            last: now,
        };
        let a = bump(
            throttle
                .per_name
                .entry((name.to_owned(), ip))
                .or_insert(fresh),
            FREE_PER_NAME,
        );
        let b = bump(
            throttle.per_address.entry(ip).or_insert(fresh),
            FREE_PER_ADDRESS,
        );
        a.max(b) - now
    }

    /// Counts a claim of a name from `ip`; `Err(wait)` if the address has claimed its allowance for now.
    pub fn claim(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        if claims.len() > 10_000 {
            claims.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < CLAIM_WINDOW)
            });
        }
        let times = claims.entry(ip).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= CLAIM_WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= CLAIMS_PER_WINDOW {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(CLAIM_WINDOW.saturating_sub(now.duration_since(oldest)));
        }
        times.push_back(now);
        Ok(())
    }

    /// Forgets the wrong guesses for `name` from `ip` (the owner got in).
    pub fn succeeded(&self, name: &str, ip: IpAddr) {
        let mut throttle = self.throttle.lock().unwrap_or_else(|e| e.into_inner());
        throttle.per_name.remove(&(name.to_owned(), ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let p = Passwords::default();
        let hash = p.hash("correct horse".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(p.verify("correct horse".into(), hash.clone()).await);
        assert!(!p.verify("correct hose".into(), hash).await);
        assert!(!p.verify("x".into(), "not a hash".into()).await);
    }

    /// The 20th guess from one address waits (minutes), the owner from another address does not, and
    /// another name from the guessing address is throttled too once the address is over its allowance.
    #[test]
    fn guesses_back_off_per_name_and_address() {
        let p = Passwords::default();
        let guesser: IpAddr = "10.0.0.1".parse().unwrap();
        let owner: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..20 {
            if let Err(wait) = p.check("bob", guesser, now) {
                now += wait;
            }
            waits.push(p.failed("bob", guesser, now));
        }
        assert_eq!(waits[..3], [Duration::ZERO; 3], "the first three are free");
        assert_eq!(waits[3], Duration::from_secs(1));
        assert_eq!(waits[4], Duration::from_secs(2));
        assert_eq!(waits[19], MAX_WAIT, "then minutes per guess");
        assert!(p.check("bob", guesser, now).is_err());
        assert_eq!(
            p.check("bob", owner, now),
            Ok(()),
            "the owner elsewhere is not held up"
        );
        assert!(
            p.check("alice", guesser, now).is_err(),
            "the address is over its allowance for every name"
        );
        assert_eq!(acceptable("short", MIN_CHARS), Err(Weak::TooShort));
        assert_eq!(acceptable("short", 5), Ok(()));
        assert_eq!(acceptable("长一点的中文密码", MIN_CHARS), Ok(()));
    }
}
