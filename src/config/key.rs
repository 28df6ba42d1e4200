//! Where the API key comes from: the environment variable named by `api.api_key_env`, the file
//! `api.key_file`, or a systemd credential (`LoadCredential=zhipuai-api-key:…`, read from
//! `$CREDENTIALS_DIRECTORY/zhipuai-api-key`). Exactly one source may be set; a key file that its
//! group or others can read is refused. No error ever holds a byte of the key.

use std::path::{Path, PathBuf};

use crate::secret::{PrivateFileError, Secret, read_private_file};

use super::ConfigError;

/// The credential name systemd's `LoadCredential=` gives the key.
pub const CREDENTIAL_NAME: &str = "zhipuai-api-key";

/// Longest key file read; a key is about 50 bytes.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Finds the key. `env` reads an environment variable (the process environment in the daemon).
pub(super) fn find(
    env_name: &str,
    key_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Secret, ConfigError> {
    let from_env = env(env_name).filter(|v| !v.trim().is_empty());
    match (from_env, key_file) {
        (Some(_), Some(file)) => Err(ConfigError::KeyConflict { env: env_name.to_owned(), file: file.to_owned() }),
        (Some(v), None) => Ok(Secret::new(v.trim())),
        (None, Some(file)) => read_key_file(file),
        (None, None) => match env("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()) {
            Some(dir) if Path::new(&dir).join(CREDENTIAL_NAME).exists() => {
                read_key_file(&Path::new(&dir).join(CREDENTIAL_NAME))
            }
            _ => Err(ConfigError::MissingKey(env_name.to_owned())),
        },
    }
}

/// Reads a key file with [`read_private_file`] (no symlink, a regular file, not readable by group
/// or others, at most 4 KiB), trimmed, not empty.
fn read_key_file(path: &Path) -> Result<Secret, ConfigError> {
    let bad = |message: String| ConfigError::KeyFile { path: path.to_owned(), message };
    let text = read_private_file(path, MAX_KEY_FILE_BYTES, false).map_err(|e| match e {
        PrivateFileError::TooBig(len) => bad(format!("is {len} bytes; a key file holds only the key")),
        other => bad(other.to_string()),
    })?;
    // The message must not quote the content: it may be the key in a wrong encoding.
    let key = text.expose().trim();
    if key.is_empty() {
        return Err(bad("is empty: write the API key into it".to_owned()));
    }
    if key.lines().count() > 1 {
        return Err(bad("has more than one line: it must hold only the API key".to_owned()));
    }
    Ok(Secret::new(key))
}

/// Resolves a relative `key_file` against the config's folder.
pub(super) fn resolve(key_file: &mut Option<PathBuf>, base: &Path) {
    if let Some(p) = key_file.as_mut().filter(|p| !p.is_absolute()) {
        *p = base.join(&*p);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    const KEY: &str = "id123.s3cr3t-value";

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_private_key_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "key", &format!("{KEY}\n"), 0o600);
        assert_eq!(find("ZHIPUAI_API_KEY", Some(&path), no_env).expect("key").expose(), KEY);
        let path = write(dir.path(), "key400", KEY, 0o400);
        assert_eq!(find("ZHIPUAI_API_KEY", Some(&path), no_env).expect("key").expose(), KEY);
    }

    #[test]
    fn a_key_file_others_can_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        for mode in [0o640, 0o604, 0o644, 0o620] {
            let path = write(dir.path(), &format!("key{mode:o}"), KEY, mode);
            let e = find("ZHIPUAI_API_KEY", Some(&path), no_env).expect_err("group-readable").to_string();
            assert!(e.contains(&format!("chmod 600 {}", path.display())), "{e}");
            assert!(!e.contains("s3cr3t"), "{e}");
        }
    }

    #[test]
    fn key_file_and_key_variable_together_are_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "key", KEY, 0o600);
        let env = |name: &str| (name == "ZHIPUAI_API_KEY").then(|| "id9.other".to_owned());
        let e = find("ZHIPUAI_API_KEY", Some(&path), env).expect_err("both").to_string();
        assert!(e.contains("ZHIPUAI_API_KEY") && e.contains("key_file"), "{e}");
        assert!(!e.contains("other") && !e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn no_error_quotes_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            write(dir.path(), "two", &format!("{KEY}\n{KEY}\n"), 0o600),
            write(dir.path(), "empty", " \n", 0o600),
            write(dir.path(), "big", &KEY.repeat(400), 0o600),
        ];
        for path in &cases {
            let e = find("K", Some(path), no_env).expect_err("bad file").to_string();
            assert!(e.contains(&path.display().to_string()) && !e.contains("s3cr3t"), "{e}");
        }
        std::fs::write(dir.path().join("latin1"), b"id.s3cr3t\xe9").expect("write");
        std::fs::set_permissions(dir.path().join("latin1"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let e = find("K", Some(&dir.path().join("latin1")), no_env).expect_err("not utf-8").to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
        std::os::unix::fs::symlink(&cases[0], dir.path().join("link")).expect("symlink");
        let e = find("K", Some(&dir.path().join("link")), no_env).expect_err("symlink").to_string();
        assert!(e.contains("cannot be opened"), "{e}");
        let e = find("K", Some(&dir.path().join("missing")), no_env).expect_err("missing").to_string();
        assert!(e.contains("missing"), "{e}");
    }

    #[test]
    fn a_systemd_credential_is_used_when_nothing_else_is_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), CREDENTIAL_NAME, KEY, 0o400);
        let creds = dir.path().display().to_string();
        let env = |name: &str| (name == "CREDENTIALS_DIRECTORY").then(|| creds.clone());
        assert_eq!(find("ZHIPUAI_API_KEY", None, env).expect("credential").expose(), KEY);
        let e = find("ZHIPUAI_API_KEY", None, no_env).expect_err("nothing set").to_string();
        assert!(e.contains("ZHIPUAI_API_KEY") && e.contains("key_file"), "{e}");
    }
}
