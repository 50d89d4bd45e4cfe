//! Checksums of downloaded files: `--checksum ALGO=HEX` and the input
//! file's `checksum=ALGO=HEX`, checked over the whole `.part` file before it
//! gets its final name.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// A SHA-2 digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// Parses `sha-256`, `sha256`, `SHA-256`, ... (any case, with or
    /// without the hyphen).
    pub fn parse(text: &str) -> Option<Algorithm> {
        let name = text.trim().to_ascii_lowercase();
        let name = name.strip_prefix("sha")?;
        match name.strip_prefix('-').unwrap_or(name) {
            "224" => Some(Algorithm::Sha224),
            "256" => Some(Algorithm::Sha256),
            "384" => Some(Algorithm::Sha384),
            "512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// Length of a digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha224 => 28,
            Algorithm::Sha256 => 32,
            Algorithm::Sha384 => 48,
            Algorithm::Sha512 => 64,
        }
    }

    /// The digest of everything `reader` yields.
    pub fn digest_of(self, reader: impl Read) -> io::Result<Vec<u8>> {
        match self {
            Algorithm::Sha224 => hash::<Sha224>(reader),
            Algorithm::Sha256 => hash::<Sha256>(reader),
            Algorithm::Sha384 => hash::<Sha384>(reader),
            Algorithm::Sha512 => hash::<Sha512>(reader),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::Sha224 => "sha-224",
            Algorithm::Sha256 => "sha-256",
            Algorithm::Sha384 => "sha-384",
            Algorithm::Sha512 => "sha-512",
        })
    }
}

/// Reads `reader` to its end through the hash `D`.
fn hash<D: Digest>(mut reader: impl Read) -> io::Result<Vec<u8>> {
    let mut digest = D::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return Ok(digest.finalize().to_vec()),
            Ok(n) => digest.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A digest a file must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// How it is computed.
    pub algorithm: Algorithm,
    /// The expected digest.
    pub expected: Vec<u8>,
}

impl Checksum {
    /// Parses `ALGO=HEX`, e.g. `sha-256=9f86d0...`: a known algorithm and
    /// exactly as many hex digits (either case) as its digest has.
    pub fn parse(text: &str) -> Result<Checksum, String> {
        let (name, hex) = text
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("checksum {text:?} is not of the form ALGO=HEX"))?;
        let algorithm = Algorithm::parse(name).ok_or_else(|| {
            format!(
                "unknown checksum algorithm {:?} (sha-224, sha-256, sha-384 or sha-512)",
                name.trim()
            )
        })?;
        let hex = hex.trim();
        let digits = 2 * algorithm.digest_len();
        if hex.len() != digits {
            return Err(format!(
                "a {algorithm} digest has {digits} hex digits, {hex:?} has {}",
                hex.chars().count()
            ));
        }
        let expected = decode_hex(hex)
            .ok_or_else(|| format!("{algorithm} digest {hex:?} is not hexadecimal"))?;
        Ok(Checksum {
            algorithm,
            expected,
        })
    }

    /// Checks the file at `path`: `Ok(Err(actual))` when its digest differs.
    pub fn verify_file(&self, path: &Path) -> io::Result<Result<(), Vec<u8>>> {
        let actual = self.algorithm.digest_of(File::open(path)?)?;
        Ok(if actual == self.expected {
            Ok(())
        } else {
            Err(actual)
        })
    }

    /// The failure message for a file whose digest is `actual`.
    pub fn mismatch(&self, actual: &[u8]) -> String {
        format!(
            "{} checksum mismatch: expected {}, got {}",
            self.algorithm,
            encode_hex(&self.expected),
            encode_hex(actual)
        )
    }
}

/// Lower-case hex of `bytes`.
pub fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of an even-length hex string, `None` if it is not one.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-256 of `abc` (FIPS 180-2).
    const ABC_256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn algorithm_spellings() {
        for (text, algorithm) in [
            ("sha-224", Algorithm::Sha224),
            ("SHA256", Algorithm::Sha256),
            ("Sha-384", Algorithm::Sha384),
            ("sha512", Algorithm::Sha512),
        ] {
            assert_eq!(Algorithm::parse(text), Some(algorithm), "{text}");
        }
        for text in ["md5", "sha-1", "sha1", "sha--256", "256", "sha-256x", ""] {
            assert_eq!(Algorithm::parse(text), None, "{text}");
        }
    }

    #[test]
    fn checksums() {
        let parsed = Checksum::parse(&format!("sha-256={}", ABC_256.to_uppercase())).unwrap();
        assert_eq!(parsed.algorithm, Algorithm::Sha256);
        assert_eq!(encode_hex(&parsed.expected), ABC_256);
        assert!(Checksum::parse(ABC_256).is_err(), "no algorithm");
        assert!(Checksum::parse(&format!("md5={ABC_256}")).is_err());
        assert!(Checksum::parse(&format!("sha-256={}", &ABC_256[1..])).is_err());
        assert!(Checksum::parse(&format!("sha-256={ABC_256}00")).is_err());
        assert!(Checksum::parse(&format!("sha-384={ABC_256}")).is_err());
        let not_hex = format!("sha-256=zz{}", &ABC_256[2..]);
        assert!(Checksum::parse(&not_hex)
            .unwrap_err()
            .contains("not hexadecimal"));
        // 64 bytes but not 64 ASCII hex digits.
        let wide = format!("sha-256=é{}", &ABC_256[2..]);
        assert!(Checksum::parse(&wide).is_err());
    }

    #[test]
    fn digests_and_mismatch_messages() {
        let sum = Checksum::parse(&format!("sha256={ABC_256}")).unwrap();
        let actual = sum.algorithm.digest_of(&b"abc"[..]).unwrap();
        assert_eq!(actual, sum.expected);
        let other = sum.algorithm.digest_of(&b"abd"[..]).unwrap();
        let message = sum.mismatch(&other);
        assert!(
            message.starts_with("sha-256 checksum mismatch"),
            "{message}"
        );
        assert!(message.contains(ABC_256), "{message}");
        assert!(message.contains(&encode_hex(&other)), "{message}");
        let sha512 = Algorithm::Sha512.digest_of(&b"abc"[..]).unwrap();
        assert!(encode_hex(&sha512).starts_with("ddaf35a193617aba"));
        let sha224 = Algorithm::Sha224.digest_of(&b"abc"[..]).unwrap();
        assert!(encode_hex(&sha224).starts_with("23097d22"));
        let sha384 = Algorithm::Sha384.digest_of(&b"abc"[..]).unwrap();
        assert!(encode_hex(&sha384).starts_with("cb00753f"));
    }
}
