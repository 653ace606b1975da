//! The message authentication code of terminal messages (field 64).
//!
//! Which bytes a MAC covers is a network convention (STANDARDS.md §1.7); easypos's, for
//! `cup-bcd`: ISO 9797-1 algorithm 3 (the X9.19 retail MAC) under the terminal's MAC working
//! key, padding method 1 (zeros), over the packed message from the MTI up to, not including,
//! the 8 bytes of field 64 — so TPDU and header, which routers may rewrite, are outside it.
//! Field 64 is the last field of a `cup-bcd` message (there is no secondary bitmap), so its 8
//! bytes end the frame.

use iso8583::{Message, Profile};

/// Bytes of field 64.
pub const MAC_BYTES: usize = 8;
/// Bytes of a TPDU.
const TPDU_BYTES: usize = 5;

/// The covered bytes and the MAC of a packed message that carries field 64.
pub fn mac_parts<'a>(profile: &Profile, frame: &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
    let start = if profile.tpdu { TPDU_BYTES } else { 0 } + profile.header_len;
    let end = frame.len().checked_sub(MAC_BYTES)?;
    (start < end).then(|| (&frame[start..end], &frame[end..]))
}

/// Packs `message` with field 64 set to the MAC that `mac` computes over the covered bytes —
/// what a terminal (or the host, for its answers) does before sending.
pub fn pack_with_mac(
    profile: &Profile,
    message: &mut Message<'_>,
    mac: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Result<Vec<u8>, iso8583::Error> {
    message.set_bytes(64, vec![0; MAC_BYTES]);
    let mut frame = profile.pack(message)?;
    let (covered, _) = mac_parts(profile, &frame)
        .ok_or_else(|| iso8583::Error::Frame("too short to carry a MAC".into()))?;
    let mut computed = mac(covered);
    computed.resize(MAC_BYTES, 0);
    let end = frame.len() - MAC_BYTES;
    frame[end..].copy_from_slice(&computed);
    message.set_bytes(64, computed);
    Ok(frame)
}
