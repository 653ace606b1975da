//! The wallet payment password: six digits, kept only as an argon2id hash. Hashing and
//! checking take tens of milliseconds of CPU, so they run on the blocking pool.

use crate::WalletError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// A wallet payment password is six digits, as Chinese wallets use.
pub const PASSWORD_DIGITS: usize = 6;

fn argon2() -> argon2::Argon2<'static> {
    // argon2id with the crate's defaults (RFC 9106 / OWASP: 19 MiB, 2 passes, 1 lane), as
    // console passwords use. Six digits are few: the try limit is what protects them.
    argon2::Argon2::default()
}

fn well_formed(password: &str) -> bool {
    password.len() == PASSWORD_DIGITS && password.bytes().all(|byte| byte.is_ascii_digit())
}

/// An argon2id PHC string of `password`, with a fresh random salt.
pub async fn hash(password: &str) -> Result<String, WalletError> {
    if !well_formed(password) {
        return Err(WalletError::BadPasswordFormat);
    }
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt_bytes: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&salt_bytes)
            .map_err(|_| WalletError::Setup("cannot encode a salt".into()))?;
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|_| WalletError::Setup("cannot hash the password".into()))
    })
    .await
    .map_err(|_| WalletError::Setup("the hashing task failed".into()))?
}

/// Whether `password` matches `hash` (false for a malformed password or hash).
pub async fn verify(hash: &str, password: &str) -> bool {
    if !well_formed(password) {
        return false;
    }
    let (hash, password) = (hash.to_owned(), password.to_owned());
    tokio::task::spawn_blocking(move || match PasswordHash::new(&hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    })
    .await
    .unwrap_or(false)
}
