//! Opening the catalogue the config names: a SQLite file (`[catalog] path`, the default) or a
//! PostgreSQL database (`[catalog] url`). Every command opens it through here, so each works on
//! either backend.

use super::{Catalog, CatalogError};
use crate::config::CatalogConfig;

impl Catalog {
    /// For the daemon: opens the catalogue, creating (SQLite) and migrating it as needed.
    pub fn open_config(config: &CatalogConfig) -> Result<Catalog, CatalogError> {
        match config.postgres() {
            None => Catalog::open(&config.path),
            Some(target) => {
                let target = target.map_err(CatalogError::Connect)?;
                Catalog::from_postgres(target.connect().map_err(CatalogError::Connect)?, target.display())
            }
        }
    }

    /// For the commands that read or repair a catalogue: as [`Catalog::open_config`], but a
    /// SQLite file must exist already (a typo'd path must not become a new, empty catalogue;
    /// a typo'd database name fails to connect).
    pub fn open_config_existing(config: &CatalogConfig) -> Result<Catalog, CatalogError> {
        match config.postgres() {
            None => Catalog::open_existing(&config.path),
            Some(_) => Catalog::open_config(config),
        }
    }

    /// For readers beside the daemon (the UI, `serve`, reports): a read-only connection to a
    /// current catalogue.
    pub fn open_config_read_only(config: &CatalogConfig) -> Result<Catalog, CatalogError> {
        match config.postgres() {
            None => Catalog::open_read_only(&config.path),
            Some(target) => {
                let target = target.map_err(CatalogError::Connect)?;
                Catalog::from_postgres_read_only(target.connect().map_err(CatalogError::Connect)?, target.display())
            }
        }
    }

    /// Whether the catalogue the config names is there to read: a SQLite file that exists, or
    /// any PostgreSQL database (connecting tells).
    pub fn config_exists(config: &CatalogConfig) -> bool {
        config.url.is_some() || config.path.exists()
    }

    /// The catalogue as a person names it in messages: its file, or `postgres://user@host/db`.
    pub fn config_place(config: &CatalogConfig) -> String {
        match config.postgres() {
            Some(Ok(target)) => target.display(),
            _ => config.path.display().to_string(),
        }
    }
}
