//! Connections that come back. Every long-lived PostgreSQL connection of a store (the pool's,
//! the replica pool's, the ledger writer's, the journal writer's, the leader lock's) is opened
//! by [`Session::connect`] with the settings of its kind, and opened again the same way after
//! PostgreSQL restarts, fails over or ends the backend (`pg_terminate_backend`). What was in
//! flight on the lost connection fails — the terminal gets a 96 and reverses, and a ledger
//! group whose COMMIT got no answer is never run again: the reversal settles it — and the next
//! use reconnects, no more often than its [`Backoff`] allows while the server stays away.

use super::{connect, limit_statements, redact_url};
use crate::StoreError;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// How one kind of connection sets up its session, on the first connect and on every reconnect.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    url: String,
    /// `application_name`, so operators (and the tests) tell the connections apart.
    name: &'static str,
    /// 0: PostgreSQL's own (normally no limit).
    statement_timeout_ms: u64,
    /// Further settings of this kind, as SQL (the ledger writer's `SET enable_seqscan = off`).
    settings: &'static str,
    /// Longest a reconnect may wait for the server ([`CONNECT_TIMEOUT`]).
    connect_timeout: Duration,
}

/// Longest a reconnect waits for a server that does not answer (a host gone from the network
/// drops packets instead of refusing): the writer must not wait minutes for the system's TCP
/// timeout while its jobs queue.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Session {
    pub(crate) fn new(
        url: &str,
        name: &'static str,
        statement_timeout_ms: u64,
        settings: &'static str,
    ) -> Session {
        Session {
            url: url.to_owned(),
            name,
            statement_timeout_ms,
            settings,
            connect_timeout: CONNECT_TIMEOUT,
        }
    }

    pub(crate) async fn connect(&self) -> Result<Client, StoreError> {
        let client = connect(&self.url).await?;
        client
            .batch_execute(&format!(
                "SET application_name = '{}'; {}",
                self.name, self.settings
            ))
            .await?;
        limit_statements(&client, self.statement_timeout_ms).await?;
        Ok(client)
    }

    /// [`Session::connect`] after a loss: logged when it works, [`StoreError::Unavailable`]
    /// when it does not.
    pub(crate) async fn reconnect(&self) -> Result<Client, StoreError> {
        match tokio::time::timeout(self.connect_timeout, self.connect()).await {
            Ok(Ok(client)) => {
                tracing::info!(
                    database = %redact_url(&self.url),
                    connection = self.name,
                    "reconnected to PostgreSQL"
                );
                Ok(client)
            }
            Ok(Err(error)) => Err(self.unavailable(&format!("reconnecting failed: {error}"))),
            Err(_) => Err(self.unavailable(&format!(
                "the server did not answer within {} ms",
                self.connect_timeout.as_millis()
            ))),
        }
    }

    pub(crate) fn unavailable(&self, why: &str) -> StoreError {
        StoreError::Unavailable(format!(
            "the {} connection to PostgreSQL ({}) is lost; {why}",
            self.name,
            redact_url(&self.url)
        ))
    }
}

/// Whether `error` means the connection it came from is gone (closed, or ended by the server:
/// SQLSTATE class 08, or 57P01 to 57P03: shut down by an administrator or a crash), not that one statement failed on a live connection.
pub(crate) fn is_lost(error: &StoreError) -> bool {
    match error {
        StoreError::Postgres(error) => {
            error.is_closed()
                || error.code().is_some_and(|code| {
                    let code = code.code();
                    code.starts_with("08") || code.starts_with("57P")
                })
        }
        _ => false,
    }
}

/// What the server said when it refused or ended a connection ("terminating connection due to
/// administrator command"), which tokio-postgres's own message ("db error") leaves out. Only
/// for connection errors: a statement's error may quote the values it was given.
pub(crate) fn reason(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

/// [`reason`] of a lost connection's error.
pub(crate) fn lost_reason(error: &StoreError) -> String {
    match error {
        StoreError::Postgres(error) => reason(error),
        error => error.to_string(),
    }
}

/// How soon a lost connection may be tried again: at once the first time, then not before
/// `first` has passed, doubling up to `most` while attempts keep failing.
#[derive(Debug)]
pub(crate) struct Backoff {
    first: Duration,
    most: Duration,
    delay: Duration,
    not_before: Option<Instant>,
}

impl Backoff {
    pub(crate) const fn new(first: Duration, most: Duration) -> Backoff {
        Backoff {
            first,
            most,
            delay: first,
            not_before: None,
        }
    }

    /// `Err(wait)` while the last failed attempt is too recent to try again.
    pub(crate) fn may_try(&self) -> Result<(), Duration> {
        match self.not_before {
            Some(not_before) => match not_before.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => Err(wait),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    pub(crate) fn failed(&mut self) {
        self.not_before = Some(Instant::now() + self.delay);
        self.delay = (self.delay * 2).min(self.most);
    }

    pub(crate) fn succeeded(&mut self) {
        self.delay = self.first;
        self.not_before = None;
    }
}

/// What a task prepares on its own connection, again after each reconnect.
pub(crate) trait Prepare: Sized {
    async fn prepare(client: &Client) -> Result<Self, StoreError>;
}

/// A connection that one task owns alone (a group-commit writer), with its prepared
/// statements; after it is lost, the next use reconnects, backing off from 100 ms to 2 s while
/// the server stays away and answering [`StoreError::Unavailable`] in between.
pub(crate) struct Redial<T> {
    session: Session,
    live: Option<(Client, T)>,
    backoff: Backoff,
}

impl<T: Prepare> Redial<T> {
    /// The first connection: failing here fails the store's start, as a bad URL should.
    pub(crate) async fn open(session: Session) -> Result<Redial<T>, StoreError> {
        let client = session.connect().await?;
        let prepared = T::prepare(&client).await?;
        Ok(Redial {
            session,
            live: Some((client, prepared)),
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(2)),
        })
    }

    /// The connection and its statements, reconnected first if it was lost.
    pub(crate) async fn ready(&mut self) -> Result<(&mut Client, &T), StoreError> {
        let live = match self.live.take() {
            Some(live) if !live.0.is_closed() => live,
            _ => {
                if let Err(wait) = self.backoff.may_try() {
                    let why = format!("the next attempt in {} ms", wait.as_millis().max(1));
                    return Err(self.session.unavailable(&why));
                }
                match self.reconnect().await {
                    Ok(live) => {
                        self.backoff.succeeded();
                        live
                    }
                    Err(error) => {
                        self.backoff.failed();
                        return Err(error);
                    }
                }
            }
        };
        let (client, prepared) = self.live.insert(live);
        Ok((client, prepared))
    }

    async fn reconnect(&self) -> Result<(Client, T), StoreError> {
        let client = self.session.reconnect().await?;
        let prepared = T::prepare(&client).await.map_err(|error| {
            self.session
                .unavailable(&format!("preparing failed: {error}"))
        })?;
        Ok((client, prepared))
    }

    /// After a failed use: whether `error` lost the connection, which is then dropped so the
    /// next use reconnects.
    pub(crate) fn lost(&mut self, error: &StoreError) -> bool {
        let closed = self
            .live
            .as_ref()
            .is_some_and(|(client, _)| client.is_closed());
        if closed || is_lost(error) {
            self.live = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_lets_the_first_attempt_through_then_doubles_to_its_most() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(300));
        assert!(backoff.may_try().is_ok());
        backoff.failed();
        let wait = backoff.may_try().unwrap_err();
        assert!(wait <= Duration::from_millis(100));
        assert_eq!(backoff.delay, Duration::from_millis(200));
        backoff.failed();
        backoff.failed();
        assert_eq!(backoff.delay, Duration::from_millis(300));
        backoff.succeeded();
        assert!(backoff.may_try().is_ok());
        assert_eq!(backoff.delay, Duration::from_millis(100));
    }

    /// A server that takes the connection and never answers (as a host that vanished from
    /// the network looks while the system's TCP timeout runs): the reconnect gives up with a
    /// clear error instead of holding its writer. The outer timeout only keeps a broken build
    /// from hanging the suite.
    #[tokio::test]
    async fn a_reconnect_to_a_server_that_never_answers_gives_up() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let mut session = Session::new(
            &format!("postgres://easypos:secret@127.0.0.1:{port}/easypos"),
            "easypos test",
            0,
            "",
        );
        session.connect_timeout = Duration::from_millis(200);
        let error = tokio::time::timeout(Duration::from_secs(60), session.reconnect())
            .await
            .expect("the reconnect gave up by itself")
            .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, StoreError::Unavailable(_)), "{message}");
        assert!(message.contains("did not answer"), "{message}");
        assert!(!message.contains("secret"), "{message}");
        silent.abort();
    }

    #[test]
    fn only_connection_errors_count_as_lost() {
        assert!(!is_lost(&StoreError::Write("a bad row".into())));
        assert!(!is_lost(&StoreError::Unavailable("away".into())));
    }
}
