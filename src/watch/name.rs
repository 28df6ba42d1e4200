//! File names from the inbox, which any client of a studio's group writes: a Latin-1 SMB or tar
//! client writes bytes that are not UTF-8, a script writes a newline or an ANSI escape, a
//! generator writes 245 bytes. vidkeep opens and renames by the exact bytes ([`SpecName::raw`]) and
//! speaks of the file, in the catalogue, reports, logs and the names it gives in `processing/`,
//! `done/` and `failed/`, only by [`SpecName::text`]: valid UTF-8, no control characters, short
//! enough that `<text>.<tag>.report.json` fits the file system's 255-byte limit.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt as _;

use sha2::{Digest as _, Sha256};

/// Longest text name, in bytes: leaves room for `.<8-char tag>` and `.report.json` under NAME_MAX.
pub const MAX_TEXT_BYTES: usize = 200;

/// A spec file's name: the bytes on disk and the text vidkeep uses for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpecName {
    raw: OsString,
    text: String,
}

impl SpecName {
    /// The name of a directory entry.
    pub fn new(raw: &OsStr) -> SpecName {
        SpecName { raw: raw.to_owned(), text: text_name(raw.as_bytes()) }
    }

    /// The exact name on disk, for `open` and `rename`.
    pub fn raw(&self) -> &OsStr {
        &self.raw
    }

    /// The name as text: each byte that is not valid UTF-8 or is a control character becomes
    /// `%XX`, and a name over [`MAX_TEXT_BYTES`] is shortened (keeping its extension, with a
    /// hash of the whole name so two long names stay apart).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the text is the name itself (nothing escaped or shortened).
    pub fn is_exact(&self) -> bool {
        self.raw.as_bytes() == self.text.as_bytes()
    }
}

fn text_name(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            // Writing into a String cannot fail.
            let _ = crate::telemetry::escape_char(c, &mut out);
        }
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() <= MAX_TEXT_BYTES {
        return out;
    }
    let digest = Sha256::digest(bytes);
    let tag = format!("~{:02x}{:02x}{:02x}{:02x}", digest[0], digest[1], digest[2], digest[3]);
    let ext = match out.rfind('.') {
        Some(i) if out.len() - i <= 16 => out[i..].to_owned(),
        _ => String::new(),
    };
    let mut cut = MAX_TEXT_BYTES - tag.len() - ext.len();
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{tag}{ext}", &out[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> String {
        SpecName::new(OsStr::from_bytes(bytes)).text().to_owned()
    }

    #[test]
    fn bytes_that_are_not_text_are_escaped() {
        assert_eq!(text(b"caf\xe9.json"), "caf%E9.json");
        assert_eq!(text(b"two\nlines.txt"), "two%0Alines.txt");
        assert_eq!(text(b"\x1b[31mred.txt"), "%1B[31mred.txt");
        assert_eq!(text("café 日本.toml".as_bytes()), "café 日本.toml");
        assert!(SpecName::new(OsStr::new("fox.json")).is_exact());
        assert!(!SpecName::new(OsStr::from_bytes(b"caf\xe9.json")).is_exact());
    }

    #[test]
    fn long_names_keep_their_extension_and_stay_apart() {
        let a = text(format!("{}a.txt", "n".repeat(240)).as_bytes());
        let b = text(format!("{}b.txt", "n".repeat(240)).as_bytes());
        assert!(a.len() <= MAX_TEXT_BYTES && a.ends_with(".txt"), "{a}");
        assert_ne!(a, b);
        let wide = text("日".repeat(100).as_bytes());
        assert!(wide.len() <= MAX_TEXT_BYTES && wide.is_char_boundary(wide.len()));
        assert!(format!("{a}.12345678.report.json").len() <= 255);
    }
}
