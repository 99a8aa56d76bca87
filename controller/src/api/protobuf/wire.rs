//! The protobuf wire format, read from untrusted bytes: every length is checked against
//! what is left, so a hostile body yields an error, never a panic or a large allocation.

/// One field's value as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl Wire<'_> {
    /// Whether this is the value Go's marshaller writes for an unset non-pointer field.
    pub fn is_zero(&self) -> bool {
        match self {
            Wire::Varint(v) | Wire::Fixed64(v) => *v == 0,
            Wire::Fixed32(v) => *v == 0,
            Wire::Bytes(b) => b.is_empty(),
        }
    }
}

/// The fields of one message, in wire order.
pub struct Fields<'a> {
    buf: &'a [u8],
}

/// Iterates over the fields of the message `buf` holds.
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf }
}

/// Reads a varint off the front of `buf`.
pub fn varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or("truncated varint")?;
        *buf = rest;
        if shift == 63 && byte > 1 {
            return Err("varint overflows 64 bits".into());
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint longer than 10 bytes".into())
}

fn take<'a>(buf: &mut &'a [u8], len: usize) -> Result<&'a [u8], String> {
    if len > buf.len() {
        return Err("a field runs past the end of its message".into());
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

impl<'a> Fields<'a> {
    fn read(&mut self) -> Result<(u32, Wire<'a>), String> {
        let key = varint(&mut self.buf)?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| *n != 0)
            .ok_or("invalid field number")?;
        let value = match key & 7 {
            0 => Wire::Varint(varint(&mut self.buf)?),
            1 => {
                let b = take(&mut self.buf, 8)?;
                Wire::Fixed64(u64::from_le_bytes(b.try_into().map_err(|_| "fixed64")?))
            }
            2 => {
                let len = usize::try_from(varint(&mut self.buf)?).map_err(|_| "length")?;
                Wire::Bytes(take(&mut self.buf, len)?)
            }
            5 => {
                let b = take(&mut self.buf, 4)?;
                Wire::Fixed32(u32::from_le_bytes(b.try_into().map_err(|_| "fixed32")?))
            }
            // Groups (3, 4) are proto2 relics no Kubernetes type uses.
            other => return Err(format!("unsupported wire type {other}")),
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let item = self.read();
        if item.is_err() {
            // Nothing after a malformed field can be trusted.
            self.buf = &[];
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_lengths_are_bounds_checked() {
        let mut b: &[u8] = &[0x96, 0x01];
        assert_eq!(varint(&mut b), Ok(150));
        let mut b: &[u8] = &[0xff; 11];
        assert!(varint(&mut b).is_err());
        let mut b: &[u8] = &[0x80];
        assert!(varint(&mut b).is_err());
        // -1 as an int64: ten bytes.
        let mut b: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(varint(&mut b).map(|v| v as i64), Ok(-1));
        let all: Vec<_> = fields(&[0x0a, 0x05, b'a']).collect();
        assert_eq!(all.len(), 1);
        assert!(all[0].is_err());
        let all: Vec<_> = fields(&[0x08, 0x01, 0x12, 0x01, b'x', 0x1d, 1, 0, 0, 0]).collect();
        assert_eq!(
            all,
            vec![
                Ok((1, Wire::Varint(1))),
                Ok((2, Wire::Bytes(b"x"))),
                Ok((3, Wire::Fixed32(1)))
            ]
        );
        assert!(fields(&[0x03]).next().is_some_and(|r| r.is_err()));
        assert!(fields(&[0x00, 0x00]).next().is_some_and(|r| r.is_err()));
    }
}
