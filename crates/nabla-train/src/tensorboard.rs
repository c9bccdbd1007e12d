//! TensorBoard event files (`tensorboard --logdir RUN/tensorboard`): scalars per step and per
//! epoch, and images.
//!
//! The format is TensorFlow's, as documented in its sources: a file of TFRecords, each
//! `u64 length · u32 masked CRC-32C of the length · data · u32 masked CRC-32C of the data`
//! (little-endian; mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8), whose data is one `Event`
//! protocol buffer (tensorflow/core/util/event.proto, summary.proto). The messages are declared
//! below with prost's derive, field numbers as in those files; the first event of a file names
//! the format version, "brain.Event:2".

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use nabla_core::{Error, Result};
use prost::Message;

/// `tensorflow.Event`: the fields nabla writes.
#[derive(Clone, PartialEq, Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(string, optional, tag = "3")]
    pub file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`: a tag and a scalar or an image.
#[derive(Clone, PartialEq, Message)]
pub struct SummaryValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    #[prost(message, optional, tag = "4")]
    pub image: Option<SummaryImage>,
}

/// `tensorflow.Summary.Image`: an encoded PNG and its size.
#[derive(Clone, PartialEq, Message)]
pub struct SummaryImage {
    #[prost(int32, tag = "1")]
    pub height: i32,
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 1 grey, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// TFRecord's checksum: CRC-32C, rotated and offset.
pub fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Appends events to one new file in a folder.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl EventWriter {
    /// A new `events.out.tfevents.<seconds>.nabla.<pid>` in `dir` (created if needed), with
    /// the version event written. A resumed run adds a file; TensorBoard reads them together.
    pub fn create(dir: &Path) -> Result<EventWriter> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let t = now();
        let path = dir.join(format!("events.out.tfevents.{}.nabla.{}", t as u64, std::process::id()));
        let file = File::create(&path).map_err(|e| io_err(&path, e))?;
        let mut w = EventWriter {
            path,
            out: BufWriter::new(file),
        };
        w.write(&Event {
            wall_time: t,
            step: 0,
            file_version: Some("brain.Event:2".into()),
            summary: None,
        })?;
        w.flush()?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, event: &Event) -> Result<()> {
        let data = event.encode_to_vec();
        let len = (data.len() as u64).to_le_bytes();
        let mut record = Vec::with_capacity(data.len() + 16);
        record.extend(len);
        record.extend(masked_crc(&len).to_le_bytes());
        record.extend(&data);
        record.extend(masked_crc(&data).to_le_bytes());
        self.out.write_all(&record).map_err(|e| io_err(&self.path, e))
    }

    /// Scalars `(tag, value)` at `step`, in one event.
    pub fn scalars(&mut self, step: u64, values: &[(&str, f64)]) -> Result<()> {
        let value = values
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|&(tag, v)| SummaryValue {
                tag: tag.into(),
                simple_value: Some(v as f32),
                image: None,
            })
            .collect::<Vec<_>>();
        if value.is_empty() {
            return Ok(());
        }
        self.write(&Event {
            wall_time: now(),
            step: step as i64,
            file_version: None,
            summary: Some(Summary { value }),
        })
    }

    /// A PNG image (its bytes) under `tag` at `step`.
    pub fn png(&mut self, step: u64, tag: &str, png: &[u8]) -> Result<()> {
        let img = image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .map_err(|e| io_err(&self.path, format!("{tag}: not a PNG: {e}")))?;
        let image = SummaryImage {
            height: img.height() as i32,
            width: img.width() as i32,
            colorspace: img.color().channel_count() as i32,
            encoded_image_string: png.to_vec(),
        };
        self.write(&Event {
            wall_time: now(),
            step: step as i64,
            file_version: None,
            summary: Some(Summary {
                value: vec![SummaryValue {
                    tag: tag.into(),
                    simple_value: None,
                    image: Some(image),
                }],
            }),
        })
    }

    /// Writes what is buffered to the file (once per epoch: TensorBoard then shows it).
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| io_err(&self.path, e))
    }
}

/// Reads the events of a file back, checking every record's length and checksums.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let bad = |at: usize, what: &str| io_err(path, format!("record at byte {at}: {what}"));
    let mut events = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let head = bytes.get(at..at + 12).ok_or_else(|| bad(at, "truncated header"))?;
        let len_bytes: [u8; 8] = head[..8].try_into().expect("8 bytes");
        if masked_crc(&len_bytes).to_le_bytes() != head[8..12] {
            return Err(bad(at, "length checksum mismatch"));
        }
        let len = usize::try_from(u64::from_le_bytes(len_bytes)).map_err(|_| bad(at, "length"))?;
        let end = at.checked_add(12 + len + 4).ok_or_else(|| bad(at, "length"))?;
        let body = bytes.get(at + 12..end).ok_or_else(|| bad(at, "truncated data"))?;
        let (data, crc) = body.split_at(len);
        if masked_crc(data).to_le_bytes() != crc {
            return Err(bad(at, "data checksum mismatch"));
        }
        events.push(Event::decode(data).map_err(|e| bad(at, &e.to_string()))?);
        at = end;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_and_its_mask_match_known_values() {
        // CRC-32C("123456789") = 0xE3069283 (the check value of the Castagnoli polynomial).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        // Rotated right by 15: 0x2507C60D; plus 0xA282EAD8 (mod 2³²), worked out by hand.
        assert_eq!(masked_crc(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn an_event_encodes_as_the_protobuf_wire_format() {
        // step = 3 (field 2, varint) and one value: tag "a" (field 1), simple_value 1.0
        // (field 2, fixed32), inside summary (field 5): bytes worked out by hand.
        let e = Event {
            wall_time: 0.0,
            step: 3,
            file_version: None,
            summary: Some(Summary {
                value: vec![SummaryValue {
                    tag: "a".into(),
                    simple_value: Some(1.0),
                    image: None,
                }],
            }),
        };
        let expected = [
            0x10, 0x03, // step
            0x2a, 0x0a, // summary, 10 bytes
            0x0a, 0x08, // value, 8 bytes
            0x0a, 0x01, b'a', // tag
            0x15, 0x00, 0x00, 0x80, 0x3f, // simple_value 1.0f
        ];
        assert_eq!(e.encode_to_vec(), expected);
    }

    #[test]
    fn written_events_read_back_and_damage_is_detected() {
        let dir = std::env::temp_dir().join(format!("nabla-tb-{}", std::process::id()));
        let mut w = EventWriter::create(&dir).unwrap();
        w.scalars(7, &[("train/loss", 0.5), ("skipped", f64::NAN)]).unwrap();
        w.flush().unwrap();
        let events = read_events(w.path()).unwrap();
        assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
        let v = &events[1].summary.as_ref().unwrap().value;
        assert_eq!((events[1].step, v.len(), v[0].tag.as_str()), (7, 1, "train/loss"));
        assert_eq!(v[0].simple_value, Some(0.5));
        let mut bytes = std::fs::read(w.path()).unwrap();
        let last = bytes.len() - 6;
        bytes[last] ^= 1;
        std::fs::write(w.path(), bytes).unwrap();
        assert!(read_events(w.path()).unwrap_err().to_string().contains("checksum"));
        std::fs::remove_dir_all(dir).ok();
    }
}
