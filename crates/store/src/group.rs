//! What both writers share: taking a group of waiting jobs off the queue, and stamping them.

use crate::Clock;
use tokio::sync::mpsc;

/// After `first`, takes jobs that are already waiting until the group weighs `max_weight`;
/// never waits for more. Returns the group and its weight.
pub(crate) fn take_waiting<J>(
    first: J,
    jobs: &mut mpsc::Receiver<J>,
    weight: impl Fn(&J) -> usize,
    max_weight: usize,
) -> (Vec<J>, usize) {
    let mut total = weight(&first);
    let mut group = vec![first];
    while total < max_weight {
        match jobs.try_recv() {
            Ok(job) => {
                total += weight(&job);
                group.push(job);
            }
            Err(_) => break,
        }
    }
    (group, total)
}

/// Timestamps are unique and increasing even if the wall clock steps back: a batch of `count`
/// requests gets `max(clock, last + 1)` and reserves the next `count` nanoseconds. Both
/// backends stamp this way, so the same requests give identical records on either.
pub(crate) fn next_timestamp(clock: &dyn Clock, last: &mut u64, count: usize) -> u64 {
    let now = clock.now().max(*last + 1);
    *last = now + count as u64;
    now
}
