//! The receive side of framing: a fixed buffer that holds at most one largest frame and its
//! prefix, and hands out complete frames. Listener and client share it so both apply the same
//! rules.

use std::io;

use iso8583::LengthPrefix;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why the bytes at the front of the buffer cannot be a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadFrame {
    /// The prefix announces more than the frame limit; the body is never read.
    TooLarge { len: usize },
    /// The prefix is not a length (an `Ascii4` prefix with a non-digit).
    Malformed,
}

#[derive(Debug)]
pub(crate) struct FrameBuffer {
    prefix: LengthPrefix,
    max_len: usize,
    /// Allocated once per connection: `prefix width + max_len` bytes. Because a frame is taken
    /// out as soon as it is complete, what stays behind is always a strict prefix of one frame,
    /// so there is always room to read more and the buffer never grows.
    bytes: Box<[u8]>,
    start: usize,
    end: usize,
}

impl FrameBuffer {
    pub(crate) fn new(prefix: LengthPrefix, max_len: usize) -> Self {
        Self {
            prefix,
            max_len,
            bytes: vec![0; prefix.width() + max_len].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// True when no byte of a next frame has arrived.
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Takes the next complete frame body off the front, `None` if more bytes are needed.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Vec<u8>>, BadFrame> {
        let pending = self.bytes.get(self.start..self.end).unwrap_or_default();
        let len = match self.prefix.read(pending) {
            Ok(None) => return Ok(None),
            Ok(Some(len)) => len,
            Err(iso8583::Error::TooLarge { len, .. }) => return Err(BadFrame::TooLarge { len }),
            Err(_) => return Err(BadFrame::Malformed),
        };
        if len > self.max_len {
            return Err(BadFrame::TooLarge { len });
        }
        let width = self.prefix.width();
        let Some(body) = pending.get(width..width + len) else {
            return Ok(None);
        };
        let frame = body.to_vec();
        self.start += width + len;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(frame))
    }

    /// Reads whatever the peer has sent, up to the room left. `Ok(0)` is end of stream. Cancel
    /// safe: a read that is dropped has taken no bytes. Call only after `next_frame` returned
    /// `Ok(None)`.
    pub(crate) async fn read_from<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> io::Result<usize> {
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let room = self.bytes.get_mut(self.end..).unwrap_or_default();
        if room.is_empty() {
            // Cannot happen while callers take frames out first (see `bytes`); refuse rather
            // than mistake a zero-byte read for end of stream.
            return Err(io::Error::other(
                "receive buffer full without a complete frame",
            ));
        }
        let read = reader.read(room).await?;
        self.end += read;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    /// A reader that hands out the stream in the given piece sizes (cycled), like TCP segments.
    struct Pieces<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        next: usize,
    }

    impl AsyncRead for Pieces<'_> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _context: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let size = self.sizes[self.next % self.sizes.len()];
            self.next += 1;
            let take = size.min(buf.remaining()).min(self.data.len());
            let (head, rest) = self.data.split_at(take);
            buf.put_slice(head);
            self.data = rest;
            Poll::Ready(Ok(()))
        }
    }

    proptest! {
        #[test]
        fn any_frames_cut_anywhere_come_out_whole(
            frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..12),
            sizes in prop::collection::vec(1usize..64, 1..8),
            ascii in any::<bool>(),
        ) {
            let prefix = if ascii { LengthPrefix::Ascii4 } else { LengthPrefix::Binary2 };
            let wire: Vec<u8> = frames
                .iter()
                .flat_map(|frame| prefix.frame(frame).unwrap())
                .collect();
            let mut reader = Pieces { data: &wire, sizes, next: 0 };
            let mut buffer = FrameBuffer::new(prefix, 300);
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let received = runtime.block_on(async {
                let mut received = Vec::new();
                // Each read takes at least one byte, so this ends within wire.len() + 1 reads.
                for _ in 0..=wire.len() {
                    while let Some(frame) = buffer.next_frame().unwrap() {
                        received.push(frame);
                    }
                    if buffer.read_from(&mut reader).await.unwrap() == 0 {
                        break;
                    }
                }
                received
            });
            prop_assert_eq!(received, frames);
            prop_assert!(buffer.is_empty());
        }
    }

    fn fill(buffer: &mut FrameBuffer, bytes: &[u8]) {
        buffer.bytes[buffer.end..buffer.end + bytes.len()].copy_from_slice(bytes);
        buffer.end += bytes.len();
    }

    #[test]
    fn frames_come_out_whole_and_in_order() {
        let mut buffer = FrameBuffer::new(LengthPrefix::Binary2, 16);
        fill(&mut buffer, &[0, 2, b'a', b'b', 0, 0, 0, 3, b'c']);
        assert_eq!(buffer.next_frame(), Ok(Some(b"ab".to_vec())));
        assert_eq!(buffer.next_frame(), Ok(Some(Vec::new())));
        assert_eq!(buffer.next_frame(), Ok(None));
        assert!(!buffer.is_empty());
    }

    #[test]
    fn limits_apply_before_the_body() {
        let mut buffer = FrameBuffer::new(LengthPrefix::Ascii4, 16);
        fill(&mut buffer, b"0017");
        assert_eq!(buffer.next_frame(), Err(BadFrame::TooLarge { len: 17 }));
        let mut buffer = FrameBuffer::new(LengthPrefix::Ascii4, 16);
        fill(&mut buffer, b"00x1");
        assert_eq!(buffer.next_frame(), Err(BadFrame::Malformed));
        let mut buffer = FrameBuffer::new(LengthPrefix::Binary2, 16);
        fill(&mut buffer, &[0xFF, 0xFF]);
        assert_eq!(buffer.next_frame(), Err(BadFrame::TooLarge { len: 65535 }));
    }
}
