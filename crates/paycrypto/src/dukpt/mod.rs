//! DUKPT: ANSI X9.24-1 (TDES) and ANSI X9.24-3-2017 (AES).
//!
//! Each scheme has a host side (derive any transaction key from the BDK and the KSN) and a
//! device side ([`tdes::Device`], [`aes::Device`]) that holds only its future-key register
//! (X9.24-1) or intermediate-derivation-key register (X9.24-3): the initial key is erased once
//! the register is loaded, and each used key is erased after use.

pub mod aes;
pub mod tdes;

use crate::error::{Error, Result};
use crate::secret::SecretBytes;

/// The device's key register shared by both schemes: slot `i` holds the key for the counter
/// whose lowest set bit is `i` (its parent is the counter without that bit).
pub(crate) struct Register {
    slots: Vec<Option<SecretBytes>>,
    /// Next counter to use; `u64` so that stepping past the last counter cannot wrap.
    counter: u64,
    counter_bits: u32,
    max_one_bits: u32,
}

impl Register {
    /// Fills every slot from the initial key for counters with one bit set, then forgets the
    /// initial key (the caller drops it).
    pub(crate) fn load(
        initial: &SecretBytes,
        counter_bits: u32,
        max_one_bits: u32,
        derive: impl Fn(&SecretBytes, u64) -> SecretBytes,
    ) -> Self {
        let slots = (0..counter_bits)
            .map(|bit| Some(derive(initial, 1u64 << bit)))
            .collect();
        Self {
            slots,
            counter: 1,
            counter_bits,
            max_one_bits,
        }
    }

    pub(crate) fn counter(&self) -> u64 {
        self.counter
    }

    /// Returns the key for the current counter, refills the slots below it with its children,
    /// erases it from the register and advances the counter (skipping counters with too many
    /// one bits, as X9.24 prescribes).
    pub(crate) fn take(
        &mut self,
        derive: impl Fn(&SecretBytes, u64) -> SecretBytes,
    ) -> Result<(u64, SecretBytes)> {
        if self.counter >> self.counter_bits != 0 {
            return Err(Error::CounterExhausted);
        }
        let used = self.counter;
        let lowest = used.trailing_zeros();
        let key = self.slots[lowest as usize]
            .take()
            .ok_or(Error::Invalid("DUKPT register slot empty"))?;
        let room_for_children = used.count_ones() < self.max_one_bits;
        if room_for_children {
            for bit in 0..lowest {
                self.slots[bit as usize] = Some(derive(&key, used | (1u64 << bit)));
            }
        }
        self.counter = if room_for_children {
            used + 1
        } else {
            used + (1u64 << lowest)
        };
        Ok((used, key))
    }

    #[cfg(test)]
    pub(crate) fn positioned(
        counter: u64,
        key: SecretBytes,
        counter_bits: u32,
        max_one_bits: u32,
    ) -> Self {
        let mut slots: Vec<Option<SecretBytes>> = (0..counter_bits).map(|_| None).collect();
        slots[counter.trailing_zeros() as usize] = Some(key);
        Self {
            slots,
            counter,
            counter_bits,
            max_one_bits,
        }
    }
}

/// The next counter a device uses after `counter`, or `CounterExhausted`.
pub(crate) fn next_counter(counter: u64, counter_bits: u32, max_one_bits: u32) -> Result<u64> {
    let next = if counter.count_ones() < max_one_bits {
        counter + 1
    } else {
        counter + (1u64 << counter.trailing_zeros())
    };
    if next >> counter_bits != 0 {
        Err(Error::CounterExhausted)
    } else {
        Ok(next)
    }
}

pub(crate) fn check_counter(counter: u64, max_one_bits: u32) -> Result<()> {
    if counter == 0 {
        return Err(Error::InvalidCounter(
            "counter 0 is never used for a transaction",
        ));
    }
    if counter.count_ones() > max_one_bits {
        return Err(Error::InvalidCounter(
            "more one bits than a device ever uses",
        ));
    }
    Ok(())
}
