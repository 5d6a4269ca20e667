//! SHA-256 checks and all-or-nothing file writes.
//!
//! Every file `fetch` creates is first written as `.<name>.partial-<pid>` in the destination
//! folder and renamed into place only once complete and verified, so an interrupted or failed
//! fetch never leaves a half file under the real name.

use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Hex SHA-256 of bytes.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks a file against an expected hex SHA-256 ([`Error::Checksum`] on mismatch).
pub fn verify_sha256(path: &Path, expected: &str) -> Result<()> {
    let actual = sha256_file(path)?;
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(Error::Checksum {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Data rows of a text file: non-blank lines, less one for a header line.
pub fn count_rows(path: &Path, header: bool) -> Result<usize> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(count_rows_bytes(&bytes, header))
}

pub fn count_rows_bytes(bytes: &[u8], header: bool) -> usize {
    let lines = bytes
        .split(|&b| b == b'\n')
        .filter(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
        .count();
    lines.saturating_sub(header as usize)
}

/// A file being written under a temporary name next to its destination. [`PartialFile::commit`]
/// renames it into place; dropping it uncommitted deletes it.
pub struct PartialFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    bytes: u64,
}

impl PartialFile {
    /// Starts writing `dest` (its folder is created if needed).
    pub fn create(dest: &Path) -> Result<Self> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(PartialFile {
            tmp,
            dest: dest.to_path_buf(),
            file: Some(file),
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    /// Copies everything from `r` into the file.
    pub fn write_from(&mut self, r: &mut dyn Read) -> Result<u64> {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        loop {
            let n = r.read(&mut buf).map_err(|e| Error::io(&self.tmp, e))?;
            if n == 0 {
                return Ok(total);
            }
            self.write_all(&buf[..n])?;
            total += n as u64;
        }
    }

    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let f = self.file.as_mut().expect("file open until commit");
        f.write_all(data).map_err(|e| Error::io(&self.tmp, e))?;
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// The temporary path (for checks that read the file back before commit).
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Hex SHA-256 of what was written.
    pub fn sha256(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Checks the content against `expected` (if any); on mismatch the partial file is removed
    /// and the error names `source` (the file or URL the bytes came from).
    pub fn check(&self, expected: Option<&str>, source: &Path) -> Result<String> {
        let actual = self.sha256();
        match expected {
            Some(exp) if !actual.eq_ignore_ascii_case(exp) => Err(Error::Checksum {
                path: source.to_path_buf(),
                expected: exp.to_string(),
                actual,
            }),
            _ => Ok(actual),
        }
    }

    /// Flushes to disk and renames into place, replacing any existing file.
    pub fn commit(mut self) -> Result<PathBuf> {
        let f = self.file.take().expect("file open until commit");
        f.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        drop(f);
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        Ok(self.dest.clone())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            self.file = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Copies `src` to `dest` through a [`PartialFile`], verifying `expected` before the rename.
/// Returns the SHA-256.
pub fn copy_verified(src: &Path, dest: &Path, expected: Option<&str>) -> Result<String> {
    let mut f = File::open(src).map_err(|e| Error::io(src, e))?;
    let mut p = PartialFile::create(dest)?;
    p.write_from(&mut f)?;
    let sha = p.check(expected, src)?;
    p.commit()?;
    Ok(sha)
}

/// Writes `bytes` to `dest` through a [`PartialFile`], verifying `expected` before the rename.
pub fn write_verified(
    bytes: &[u8],
    dest: &Path,
    expected: Option<&str>,
    source: &Path,
) -> Result<String> {
    let mut p = PartialFile::create(dest)?;
    p.write_all(bytes)?;
    let sha = p.check(expected, source)?;
    p.commit()?;
    Ok(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_file_commits_or_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.txt");
        let sha_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_bytes(b"abc"), sha_abc);
        // Mismatch: error names the source, nothing left behind.
        let err = write_verified(b"abd", &dest, Some(sha_abc), Path::new("src.txt"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("src.txt") && err.contains(sha_abc), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Dropped uncommitted: removed.
        {
            let mut p = PartialFile::create(&dest).unwrap();
            p.write_all(b"half").unwrap();
            assert!(p.temp_path().exists());
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_verified(b"abc", &dest, Some(sha_abc), Path::new("x")).unwrap();
        verify_sha256(&dest, sha_abc).unwrap();
        assert!(verify_sha256(&dest, &"0".repeat(64)).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(count_rows_bytes(b"h\na\n\nb\n  \n", true), 2);
        assert_eq!(count_rows_bytes(b"a\nb", false), 2);
    }
}
