//! Input rules checked before a request reaches the writer: names, sizes, metadata events.

use crate::error::{Error, Result};
use crate::format;
use crate::log::Config;
use crate::metadata::{self, StreamMetadata};
use crate::types::ProposedEvent;

/// Name of the virtual stream of every event; it cannot be written.
pub const ALL_STREAM: &str = "$all";

fn shorten(s: &str) -> String {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_string()
}

/// Stream names: 1 to `max_stream_name_bytes` bytes of UTF-8 without control characters; not
/// `$all`; a metadata stream `$$x` must name a valid stream `x` that is not itself a metadata
/// stream.
pub fn stream_name(config: &Config, name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidStreamName {
            stream: shorten(name),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > config.max_stream_name_bytes.min(u16::MAX as usize) {
        return bad("it is too long");
    }
    if name.chars().any(char::is_control) {
        return bad("it contains control characters");
    }
    if name == ALL_STREAM {
        return bad("$all is the virtual stream of every event");
    }
    if let Some(target) = metadata::target_of(name) {
        if target.is_empty() {
            return bad("a metadata stream must name a stream");
        }
        if metadata::target_of(target).is_some() {
            return bad("metadata streams have no metadata stream");
        }
    }
    Ok(())
}

/// Checks a whole append request.
pub fn append(config: &Config, stream: &str, events: &[ProposedEvent]) -> Result<()> {
    stream_name(config, stream)?;
    // Sizes first (cheap), so that an oversized batch is refused before any event is parsed.
    let bytes: usize = events
        .iter()
        .map(|e| {
            format::frame_len(
                stream.len(),
                e.event_type.len(),
                e.metadata.len(),
                e.data.len(),
            )
        })
        .sum();
    if events.len() > config.max_batch_events || bytes > config.max_batch_bytes {
        return Err(Error::BatchTooLarge {
            events: events.len(),
            bytes,
            max_events: config.max_batch_events,
            max_bytes: config.max_batch_bytes,
        });
    }
    let is_meta = metadata::target_of(stream).is_some();
    for (index, e) in events.iter().enumerate() {
        let invalid = |reason: String| Err(Error::InvalidEvent { index, reason });
        if e.event_type.is_empty() {
            return invalid("the event type is empty".into());
        }
        if e.event_type.len() > config.max_event_type_bytes.min(u16::MAX as usize) {
            return invalid(format!(
                "the event type is {} bytes, over the limit of {}",
                e.event_type.len(),
                config.max_event_type_bytes
            ));
        }
        if e.event_type.chars().any(char::is_control) {
            return invalid("the event type contains control characters".into());
        }
        let size = e.data.len() + e.metadata.len();
        if size > config.max_event_bytes {
            return Err(Error::EventTooLarge {
                index,
                size,
                limit: config.max_event_bytes,
            });
        }
        if is_meta {
            if e.event_type != metadata::METADATA_EVENT_TYPE {
                return invalid(format!(
                    "events of a metadata stream must have type {}",
                    metadata::METADATA_EVENT_TYPE
                ));
            }
            if let Err(reason) = StreamMetadata::parse(&e.data) {
                return invalid(reason);
            }
        }
    }
    Ok(())
}

/// Streams that can be deleted or tombstoned: valid, and not metadata streams.
pub fn deletable(config: &Config, stream: &str) -> Result<()> {
    stream_name(config, stream)?;
    if metadata::target_of(stream).is_some() {
        return Err(Error::InvalidStreamName {
            stream: shorten(stream),
            reason: "metadata streams cannot be deleted",
        });
    }
    Ok(())
}
