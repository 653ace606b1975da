//! Errors of HSM operations. Like `paycrypto::Error`, they never carry key material, PINs,
//! PIN blocks or card numbers.

/// Everything an HSM operation can refuse.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// A cryptographic input was malformed or a key's usage forbids the operation.
    #[error(transparent)]
    Crypto(#[from] paycrypto::Error),
    /// The local master key could not be loaded.
    #[error("local master key: {0}")]
    MasterKey(String),
    /// ISO 9564-1 forbids this PIN block translation.
    #[error("PIN translation not allowed: {0}")]
    TranslationNotAllowed(&'static str),
    /// The key's header marks it non-exportable.
    #[error("key is not exportable")]
    NotExportable,
    /// Another invalid request; the text names the input.
    #[error("{0}")]
    Invalid(&'static str),
}
