//! Console sessions: a random id in a cookie (`Secure`, `HttpOnly`, `SameSite=Strict`), the
//! user it is signed in as, and its CSRF token. Every visitor gets a session before signing
//! in (the login form needs a CSRF token too); signing in replaces it with a new id, so an id
//! planted before the login is worth nothing after it. A session unused for 15 minutes ends.
//!
//! Sessions live in this process's memory, bounded by [`MAX_SESSIONS`]: a restart signs
//! everyone out, and hosts behind a load balancer need sticky sessions until sessions move to
//! the store.

use std::collections::HashMap;
use std::sync::Mutex;
use subtle::ConstantTimeEq;

/// Idle time after which a session ends (issue 7), in seconds.
pub const IDLE_TIMEOUT_SECONDS: i64 = 15 * 60;
/// Sessions kept at once; beyond, expired ones are dropped, then the least recently used.
pub const MAX_SESSIONS: usize = 100_000;
pub const SESSION_COOKIE: &str = "ep_session";
pub const LANG_COOKIE: &str = "ep_lang";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    /// The user signed in, `None` before the login.
    pub user_id: Option<String>,
    /// A user whose password was right and whose second factor is awaited (never set
    /// together with `user_id`).
    pub pending_mfa: Option<String>,
    pub csrf: String,
    /// Unix seconds of the last request.
    pub last_seen: i64,
}

impl Session {
    /// Whether `token` is this session's CSRF token (in constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        self.csrf.as_bytes().ct_eq(token.as_bytes()).into()
    }
}

/// 256 random bits in hex.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// What looking a session up found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Live(Session),
    /// It existed but was idle too long (and is gone now).
    Expired,
    Missing,
}

#[derive(Debug, Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// The live session `id` at `now`, marked as used.
    pub fn touch(&self, id: &str, now: i64) -> Found {
        let Ok(mut sessions) = self.sessions.lock() else {
            return Found::Missing;
        };
        match sessions.get_mut(id) {
            Some(session) if now - session.last_seen <= IDLE_TIMEOUT_SECONDS => {
                session.last_seen = now;
                Found::Live(session.clone())
            }
            Some(_) => {
                sessions.remove(id);
                Found::Expired
            }
            None => Found::Missing,
        }
    }

    /// A new session (anonymous when `user_id` is `None`), replacing `old` if given.
    pub fn start(&self, user_id: Option<String>, old: Option<&str>, now: i64) -> Session {
        self.insert(user_id, None, old, now)
    }

    /// A new session of a user who gave the right password and must now give a TOTP code,
    /// replacing `old`.
    pub fn start_pending(&self, user_id: String, old: Option<&str>, now: i64) -> Session {
        self.insert(None, Some(user_id), old, now)
    }

    fn insert(
        &self,
        user_id: Option<String>,
        pending_mfa: Option<String>,
        old: Option<&str>,
        now: i64,
    ) -> Session {
        let session = Session {
            id: random_token(),
            user_id,
            pending_mfa,
            csrf: random_token(),
            last_seen: now,
        };
        if let Ok(mut sessions) = self.sessions.lock() {
            if let Some(old) = old {
                sessions.remove(old);
            }
            if sessions.len() >= MAX_SESSIONS {
                sessions.retain(|_, kept| now - kept.last_seen <= IDLE_TIMEOUT_SECONDS);
            }
            if sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = sessions
                    .values()
                    .min_by_key(|kept| kept.last_seen)
                    .map(|kept| kept.id.clone())
            {
                sessions.remove(&oldest);
            }
            sessions.insert(session.id.clone(), session.clone());
        }
        session
    }

    pub fn end(&self, id: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(id);
        }
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for the session: only over HTTPS (browsers treat `localhost` and 127.0.0.1
/// as secure), out of reach of scripts, not sent on requests from other sites.
pub fn session_cookie(id: &str) -> String {
    format!("{SESSION_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

pub fn lang_cookie(code: &str) -> String {
    format!("{LANG_COOKIE}={code}; Path=/; Max-Age=31536000; Secure; HttpOnly; SameSite=Lax")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_after_fifteen_idle_minutes() {
        let sessions = Sessions::default();
        let session = sessions.start(Some("u".into()), None, 1_000);
        assert!(matches!(
            sessions.touch(&session.id, 1_000 + IDLE_TIMEOUT_SECONDS),
            Found::Live(_)
        ));
        // Touched at +900, so alive until +1800.
        assert!(matches!(
            sessions.touch(&session.id, 1_000 + 2 * IDLE_TIMEOUT_SECONDS),
            Found::Live(_)
        ));
        assert_eq!(
            sessions.touch(&session.id, 1_000 + 3 * IDLE_TIMEOUT_SECONDS + 1),
            Found::Expired
        );
        assert_eq!(sessions.touch(&session.id, 1_000), Found::Missing);
    }

    #[test]
    fn a_new_session_replaces_the_old_one() {
        let sessions = Sessions::default();
        let anonymous = sessions.start(None, None, 0);
        let signed_in = sessions.start(Some("u".into()), Some(&anonymous.id), 1);
        assert_ne!(anonymous.id, signed_in.id);
        assert_ne!(anonymous.csrf, signed_in.csrf);
        assert_eq!(sessions.touch(&anonymous.id, 2), Found::Missing);
        assert!(signed_in.csrf_matches(&signed_in.csrf.clone()));
        assert!(!signed_in.csrf_matches("forged"));
    }

    #[test]
    fn cookies_are_found_by_name() {
        assert_eq!(
            cookie("a=1; ep_session=abc; b=2", SESSION_COOKIE),
            Some("abc")
        );
        assert_eq!(cookie("ep_sessionx=abc", SESSION_COOKIE), None);
        assert!(session_cookie("x").contains("HttpOnly; SameSite=Strict"));
    }
}
