//! deserialization.json: MLS varint length headers (RFC 9420 §2.1.2).

use crate::common::{self, Outcome};
use serde_json::Value;

/// Each `vlbytes_header` must decode, using all its bytes, to `length`.
pub fn run(cases: &[Value]) -> Outcome {
    common::run_cases(cases, |case| {
        let header = common::hex_field(case, "vlbytes_header")?;
        let length = common::u64_field(case, "length")?;
        let (value, used) = conclave_mls::codec::read_varint(&header).map_err(|e| e.to_string())?;
        if used != header.len() {
            return Err(format!("used {used} of {} header bytes", header.len()));
        }
        if u64::from(value) != length {
            return Err(format!("decoded {value}, want {length}"));
        }
        let mut out = Vec::new();
        conclave_mls::codec::write_varint(value, &mut out).map_err(|e| e.to_string())?;
        common::expect_eq("re-encoding", &out, &header)
    })
}

#[cfg(test)]
mod tests {
    use conclave_mls::codec::read_varint;

    #[test]
    fn varint_negative_cases() {
        // Non-minimal: 0 and 63 in two bytes, 16383 in four bytes.
        assert!(read_varint(&[0x40, 0x00]).is_err());
        assert!(read_varint(&[0x40, 0x3f]).is_err());
        assert!(read_varint(&[0x80, 0x00, 0x3f, 0xff]).is_err());
        // The reserved 0b11 prefix.
        assert!(read_varint(&[0xc0]).is_err());
        assert!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        // Truncated.
        assert!(read_varint(&[]).is_err());
        assert!(read_varint(&[0x40]).is_err());
        assert!(read_varint(&[0x80, 0x00, 0x40]).is_err());
        // The same rules hold inside structures decoded with tls_codec.
        use conclave_mls::codec::Decode;
        use conclave_mls::codec::VarBytes;
        assert!(
            VarBytes::decode(&[0x40, 0x01, 0xaa]).is_err(),
            "non-minimal"
        );
        assert!(
            VarBytes::decode(&[0xc0, 0, 0, 0, 0, 0, 0, 1, 0xaa]).is_err(),
            "0b11"
        );
        assert!(VarBytes::decode(&[0x03, 0xaa]).is_err(), "truncated");
        assert_eq!(VarBytes::decode(&[0x01, 0xaa]).unwrap().as_slice(), &[0xaa]);
    }
}
