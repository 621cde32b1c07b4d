//! A person's profile: one directory holding the device's sealed store (`device.db`), the
//! servers' URLs (`settings.json`) and, unless a passphrase is used, the store's key
//! (`store.key`, readable by its owner only).

use crate::error::CliError;
use conclave_client::{Config, KdfParams, StoreKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The environment variable holding the store's passphrase, when the profile uses one.
pub const PASSPHRASE_ENV: &str = "CONCLAVE_PASSPHRASE";

/// How the device's store is keyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// A random key in `store.key` (mode 0600).
    File,
    /// A passphrase from [`PASSPHRASE_ENV`], stretched with Argon2id.
    Passphrase,
}

/// What `settings.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    /// The AS.
    pub auth_url: String,
    /// The DS.
    pub delivery_url: String,
    /// How the store is keyed.
    pub key: KeySource,
}

/// An opened profile directory.
#[derive(Clone, Debug)]
pub struct Profile {
    dir: PathBuf,
    /// Its settings.
    pub settings: Settings,
}

impl Profile {
    /// The default profile directory: `$CONCLAVE_HOME`, else `~/.conclave`.
    pub fn default_dir() -> PathBuf {
        if let Some(home) = std::env::var_os("CONCLAVE_HOME") {
            return PathBuf::from(home);
        }
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".conclave")
    }

    /// Creates the profile in `dir` (which must not hold a device yet).
    pub fn create(dir: &Path, auth_url: &str, delivery_url: &str) -> Result<Profile, CliError> {
        if dir.join("device.db").exists() {
            return Err(CliError::new(
                "profile_exists",
                format!("{} already holds a device", dir.display()),
                "use another --profile directory, or keep using this one",
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, &e))?;
        let key = if std::env::var_os(PASSPHRASE_ENV).is_some() {
            KeySource::Passphrase
        } else {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key)
                .map_err(|e| CliError::bare("failed", format!("no randomness: {e}")))?;
            write_private(&dir.join("store.key"), hex(&key).as_bytes())?;
            KeySource::File
        };
        let settings = Settings {
            auth_url: auth_url.trim_end_matches('/').to_owned(),
            delivery_url: delivery_url.trim_end_matches('/').to_owned(),
            key,
        };
        let json = serde_json::to_vec_pretty(&settings)
            .map_err(|e| CliError::bare("failed", e.to_string()))?;
        let path = dir.join("settings.json");
        std::fs::write(&path, json).map_err(|e| io_error(&path, &e))?;
        Ok(Profile {
            dir: dir.to_owned(),
            settings,
        })
    }

    /// Opens the profile in `dir`.
    pub fn load(dir: &Path) -> Result<Profile, CliError> {
        let path = dir.join("settings.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::new(
                    "no_profile",
                    format!("no Conclave profile in {}", dir.display()),
                    "run `conclave init --code CODE` (or pass --profile DIR)",
                ));
            }
            Err(e) => return Err(io_error(&path, &e)),
        };
        let settings = serde_json::from_slice(&bytes).map_err(|e| {
            CliError::new(
                "corrupt_profile",
                format!("{}: {e}", path.display()),
                "fix or remove the file, then run `conclave init` again",
            )
        })?;
        Ok(Profile {
            dir: dir.to_owned(),
            settings,
        })
    }

    /// The SDK configuration of this profile's device.
    pub fn config(&self) -> Result<Config, CliError> {
        let key = match self.settings.key {
            KeySource::Passphrase => {
                let passphrase = std::env::var(PASSPHRASE_ENV).map_err(|_| {
                    CliError::new(
                        "no_passphrase",
                        "this profile's store is sealed with a passphrase",
                        format!("set {PASSPHRASE_ENV}"),
                    )
                })?;
                StoreKey::Passphrase(passphrase, KdfParams::default())
            }
            KeySource::File => {
                let path = self.dir.join("store.key");
                let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, &e))?;
                let bytes = unhex(text.trim()).ok_or_else(|| {
                    CliError::bare(
                        "corrupt_profile",
                        format!("{} is not a key", path.display()),
                    )
                })?;
                StoreKey::Raw(bytes)
            }
        };
        let mut config = Config::new(
            &self.settings.auth_url,
            &self.settings.delivery_url,
            self.dir.join("device.db"),
            key,
        );
        // A person answers contact requests themselves.
        config.auto_accept_contacts = false;
        Ok(config)
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> CliError {
    CliError::bare("io", format!("{}: {e}", path.display()))
}

/// Writes a file only its owner can read (the store key).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| io_error(path, &e))?;
    file.write_all(bytes).map_err(|e| io_error(path, &e))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::create(dir.path(), "http://a/", "http://d").unwrap();
        assert_eq!(profile.settings.auth_url, "http://a");
        assert_eq!(profile.settings.key, KeySource::File);
        let loaded = Profile::load(dir.path()).unwrap();
        assert!(matches!(
            loaded.config().unwrap().store_key,
            StoreKey::Raw(_)
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("store.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "store.key readable by others: {mode:o}");
        }
    }

    #[test]
    fn missing_and_corrupt_profiles_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Profile::load(dir.path()).unwrap_err().code, "no_profile");
        std::fs::write(dir.path().join("settings.json"), b"{").unwrap();
        assert_eq!(
            Profile::load(dir.path()).unwrap_err().code,
            "corrupt_profile"
        );
    }
}
