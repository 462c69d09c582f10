//! The on-disk byte layout: segment headers and record frames (see FORMAT.md).

use bytes::Bytes;

use crate::types::{ContentType, EventId, Position, RecordedEvent, Revision};

/// Format version written in every segment header and index snapshot.
pub const FORMAT_VERSION: u32 = 1;
/// Magic bytes at the start of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"DJEVLOG\0";
/// Size of a segment header.
pub const SEGMENT_HEADER_LEN: u64 = 32;
/// Bytes of framing around a payload: length and checksum before, length after.
pub const FRAME_OVERHEAD: usize = 12;
/// Fixed part of a record payload.
pub const PAYLOAD_HEADER_LEN: usize = 70;
/// Offset of the event id within a frame (8 bytes of framing, then 44 of payload header).
pub const ID_OFFSET: usize = 8 + 44;
/// Largest payload any build accepts when decoding (the configured limits are lower).
pub const MAX_PAYLOAD_LEN: usize = 1 << 30;

/// Record kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// An ordinary event.
    Event = 1,
    /// A permanent stream deletion.
    Tombstone = 2,
}

/// Event type shown on `$all` for tombstone records.
pub const TOMBSTONE_EVENT_TYPE: &str = "$streamDeleted";
/// Revision carried by tombstone records (as EventStoreDB does).
pub const TOMBSTONE_REVISION: u64 = i64::MAX as u64;

fn crc(len: u32, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), payload)
}

/// Encodes a segment header for a segment starting at `base`.
pub fn segment_header(base: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&base.to_le_bytes());
    let c = crc32c::crc32c(&h[0..28]);
    h[28..32].copy_from_slice(&c.to_le_bytes());
    h
}

/// Why a segment header is unusable.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Bad magic or checksum.
    Corrupt(&'static str),
    /// Written by another format version.
    Version(u32),
}

/// Decodes a segment header, returning its base position.
pub fn parse_segment_header(h: &[u8]) -> Result<u64, HeaderProblem> {
    let h: &[u8; 32] = h
        .try_into()
        .map_err(|_| HeaderProblem::Corrupt("short header"))?;
    let (fixed, rest) = h.split_at(28);
    if fixed.get(0..8) != Some(&SEGMENT_MAGIC[..]) {
        return Err(HeaderProblem::Corrupt("bad magic"));
    }
    if crc32c::crc32c(fixed) != u32_at(rest, 0) {
        return Err(HeaderProblem::Corrupt("header checksum mismatch"));
    }
    let version = u32_at(fixed, 8);
    if version != FORMAT_VERSION {
        return Err(HeaderProblem::Version(version));
    }
    Ok(u64_at(fixed, 16))
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// One record to encode.
#[derive(Debug)]
pub struct RecordOut<'a> {
    pub kind: RecordKind,
    pub position: u64,
    pub synced_below: u64,
    pub batch_index: u32,
    pub batch_count: u32,
    pub revision: u64,
    pub created_ticks: i64,
    pub id: EventId,
    pub content_type: ContentType,
    pub stream: &'a str,
    pub event_type: &'a str,
    pub metadata: &'a [u8],
    pub data: &'a [u8],
}

/// Size of the frame [`encode`] writes for a record with these field lengths.
pub fn frame_len(stream: usize, event_type: usize, metadata: usize, data: usize) -> usize {
    FRAME_OVERHEAD + PAYLOAD_HEADER_LEN + stream + event_type + metadata + data
}

/// Appends the frame of `r` to `out`.
pub fn encode(out: &mut Vec<u8>, r: &RecordOut<'_>) {
    let payload_len =
        PAYLOAD_HEADER_LEN + r.stream.len() + r.event_type.len() + r.metadata.len() + r.data.len();
    // Limits are checked before encoding, so these conversions cannot truncate.
    let len = payload_len as u32;
    let start = out.len();
    out.reserve(payload_len + FRAME_OVERHEAD);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&r.position.to_le_bytes());
    out.extend_from_slice(&r.synced_below.to_le_bytes());
    out.push(r.kind as u8);
    out.push(match r.content_type {
        ContentType::Json => 0,
        ContentType::Binary => 1,
    });
    out.extend_from_slice(&(r.stream.len() as u16).to_le_bytes());
    out.extend_from_slice(&r.batch_index.to_le_bytes());
    out.extend_from_slice(&r.batch_count.to_le_bytes());
    out.extend_from_slice(&r.revision.to_le_bytes());
    out.extend_from_slice(&r.created_ticks.to_le_bytes());
    out.extend_from_slice(&r.id.0);
    out.extend_from_slice(&(r.event_type.len() as u16).to_le_bytes());
    out.extend_from_slice(&(r.metadata.len() as u32).to_le_bytes());
    out.extend_from_slice(&(r.data.len() as u32).to_le_bytes());
    out.extend_from_slice(r.stream.as_bytes());
    out.extend_from_slice(r.event_type.as_bytes());
    out.extend_from_slice(r.metadata);
    out.extend_from_slice(r.data);
    out.extend_from_slice(&len.to_le_bytes());
    let payload_start = start + 8;
    let c = crc(
        len,
        out.get(payload_start..payload_start + payload_len)
            .unwrap_or_default(),
    );
    if let Some(slot) = out.get_mut(start + 4..start + 8) {
        slot.copy_from_slice(&c.to_le_bytes());
    }
}

/// A decoded record.
#[derive(Clone, Debug)]
pub struct Record {
    pub kind: RecordKind,
    /// The stored checksum (feeds the log fingerprint).
    pub crc: u32,
    pub synced_below: u64,
    pub batch_index: u32,
    pub batch_count: u32,
    pub event: RecordedEvent,
}

impl Record {
    /// Bytes of the whole frame.
    pub fn frame_len(&self) -> u64 {
        self.event.record.len() as u64 + FRAME_OVERHEAD as u64
    }
}

/// Why bytes at an offset are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameProblem {
    /// Fewer bytes than the frame needs (the end of the data, or a torn write).
    Truncated,
    /// The bytes are there but wrong.
    Invalid(&'static str),
}

/// A record's contribution to the log fingerprint: a mix of its checksum and position. The
/// fingerprint of a set of records is the wrapping sum of these, so it can be computed in any
/// order (verification runs on two threads).
pub fn fingerprint(crc: u32, position: u64) -> u64 {
    let mut x = u64::from(crc) ^ position.rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The checksum stored in an encoded frame.
pub fn frame_crc(frame: &[u8]) -> u32 {
    u32_at(frame, 4)
}

/// Reads the payload length from the first bytes of a frame, if plausible.
pub fn peek_len(head: &[u8]) -> Result<usize, FrameProblem> {
    if head.len() < 4 {
        return Err(FrameProblem::Truncated);
    }
    let len = u32_at(head, 0) as usize;
    if len < PAYLOAD_HEADER_LEN {
        return Err(FrameProblem::Invalid("record length too small"));
    }
    if len > MAX_PAYLOAD_LEN {
        return Err(FrameProblem::Invalid("record length too large"));
    }
    Ok(len)
}

/// Decodes the frame at the start of `buf`, which is expected at log position `position`.
/// `buf` may hold more bytes after the frame.
pub fn decode(buf: &Bytes, position: u64) -> Result<Record, FrameProblem> {
    let len = peek_len(buf)?;
    let total = len + FRAME_OVERHEAD;
    if buf.len() < total {
        return Err(FrameProblem::Truncated);
    }
    let payload = buf.slice(8..8 + len);
    let stored_crc = u32_at(buf, 4);
    if crc(len as u32, &payload) != stored_crc {
        return Err(FrameProblem::Invalid("checksum mismatch"));
    }
    if u32_at(buf, 8 + len) as usize != len {
        return Err(FrameProblem::Invalid("trailing length mismatch"));
    }
    decode_payload(payload, position, stored_crc)
}

fn decode_payload(p: Bytes, position: u64, stored_crc: u32) -> Result<Record, FrameProblem> {
    if u64_at(&p, 0) != position {
        return Err(FrameProblem::Invalid("record position mismatch"));
    }
    let kind = match p.get(16) {
        Some(1) => RecordKind::Event,
        Some(2) => RecordKind::Tombstone,
        _ => return Err(FrameProblem::Invalid("unknown record kind")),
    };
    let content_type = match p.get(17) {
        Some(0) => ContentType::Json,
        Some(1) => ContentType::Binary,
        _ => return Err(FrameProblem::Invalid("unknown content type")),
    };
    let stream_len = u16_at(&p, 18) as usize;
    let type_len = u16_at(&p, 60) as usize;
    let meta_len = u32_at(&p, 62) as usize;
    let data_len = u32_at(&p, 66) as usize;
    if PAYLOAD_HEADER_LEN + stream_len + type_len + meta_len + data_len != p.len() {
        return Err(FrameProblem::Invalid("field lengths do not add up"));
    }
    let s0 = PAYLOAD_HEADER_LEN;
    let t0 = s0 + stream_len;
    let m0 = t0 + type_len;
    let d0 = m0 + meta_len;
    let d1 = d0 + data_len;
    let utf8 = |a: usize, b: usize| p.get(a..b).is_some_and(|s| std::str::from_utf8(s).is_ok());
    if !utf8(s0, t0) || !utf8(t0, m0) {
        return Err(FrameProblem::Invalid("stream or type is not UTF-8"));
    }
    let mut id = [0u8; 16];
    if let Some(s) = p.get(44..60) {
        id.copy_from_slice(s);
    }
    let r = |a: usize| a as u32;
    Ok(Record {
        kind,
        synced_below: u64_at(&p, 8),
        crc: stored_crc,
        batch_index: u32_at(&p, 20),
        batch_count: u32_at(&p, 24),
        event: RecordedEvent {
            stream: (r(s0), r(t0)),
            event_type: (r(t0), r(m0)),
            metadata: (r(m0), r(d0)),
            data: (r(d0), r(d1)),
            id: EventId(id),
            revision: Revision(u64_at(&p, 28)),
            position: Position(position),
            created_ticks: u64_at(&p, 36) as i64,
            content_type,
            record: p,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(position: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode(
            &mut out,
            &RecordOut {
                kind: RecordKind::Event,
                position,
                synced_below: position,
                batch_index: 0,
                batch_count: 1,
                revision: 7,
                created_ticks: 123,
                id: EventId([9; 16]),
                content_type: ContentType::Json,
                stream: "order-1",
                event_type: "OrderPosted",
                metadata: b"{}",
                data: b"{\"a\":1}",
            },
        );
        out
    }

    #[test]
    fn record_round_trips() {
        let bytes = Bytes::from(sample(4096));
        assert_eq!(bytes.len(), frame_len(7, 11, 2, 7));
        let rec = decode(&bytes, 4096).unwrap();
        assert_eq!(rec.event.stream(), "order-1");
        assert_eq!(rec.event.event_type(), "OrderPosted");
        assert_eq!(rec.event.revision, Revision(7));
        assert_eq!(rec.event.created_ticks, 123);
        assert_eq!(&rec.event.data()[..], b"{\"a\":1}");
        assert_eq!(rec.frame_len() as usize, bytes.len());
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let good = sample(64);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert!(
                decode(&Bytes::from(bad), 64).is_err(),
                "flip at {i} undetected"
            );
        }
    }

    #[test]
    fn record_at_wrong_position_is_rejected() {
        let bytes = Bytes::from(sample(64));
        assert_eq!(
            decode(&bytes, 65).unwrap_err(),
            FrameProblem::Invalid("record position mismatch")
        );
    }

    #[test]
    fn truncated_record_is_reported_as_truncated() {
        let bytes = sample(64);
        for cut in 0..bytes.len() {
            let b = Bytes::copy_from_slice(&bytes[..cut]);
            assert!(decode(&b, 64).is_err());
        }
    }

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let h = segment_header(1 << 40);
        assert_eq!(parse_segment_header(&h), Ok(1 << 40));
        let mut bad = h;
        bad[17] ^= 1;
        assert!(parse_segment_header(&bad).is_err());
    }
}
