//! The sled database that holds every read model.
//!
//! sled 0.34 fsyncs on a timer and has open reports of corruption after unclean shutdowns.
//! That is acceptable only because read models are derived data: a store that fails to open
//! or verify is moved aside and rebuilt from the log, with a log line saying so.

use std::path::{Path, PathBuf};

/// Key in the `meta` tree holding the store's format version.
const FORMAT_KEY: &[u8] = b"format";
/// Bumped when the layout of the store (not of one read model) changes.
const FORMAT: &[u8] = b"ats-read-models/1";

/// Errors opening or using the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("read-model store {path}: {source}")]
    Sled {
        /// Where the store lives.
        path: PathBuf,
        /// The sled error.
        source: sled::Error,
    },
    /// Moving a damaged store aside failed.
    #[error("cannot move the damaged read-model store {path} aside: {source}")]
    MoveAside {
        /// Where the store lives.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The read-model database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
}

impl Store {
    /// Opens the store at `path`; a damaged or foreign store is moved aside (to
    /// `<path>.damaged-<n>`) and a fresh one created, to be rebuilt from the log.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        match Self::open_verified(&path) {
            Ok(store) => Ok(store),
            Err(reason) => {
                let aside = (1..)
                    .map(|n| PathBuf::from(format!("{}.damaged-{n}", path.display())))
                    .find(|p| !p.exists())
                    .unwrap_or_else(|| path.with_extension("damaged"));
                tracing::warn!(
                    message = "Read-model store damaged; moving it aside and rebuilding from the log.",
                    path = %path.display(),
                    aside = %aside.display(),
                    %reason
                );
                std::fs::rename(&path, &aside).map_err(|source| StoreError::MoveAside {
                    path: path.clone(),
                    source,
                })?;
                Self::open_verified(&path).map_err(|_| StoreError::Sled {
                    path: path.clone(),
                    source: sled::Error::Unsupported("fresh store does not verify".into()),
                })
            }
        }
    }

    fn open_verified(path: &Path) -> Result<Self, String> {
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(|e| e.to_string())?;
        let meta = db.open_tree("meta").map_err(|e| e.to_string())?;
        match meta.get(FORMAT_KEY).map_err(|e| e.to_string())? {
            Some(found) if found.as_ref() == FORMAT => {}
            Some(found) => {
                return Err(format!(
                    "unknown format {:?}",
                    String::from_utf8_lossy(&found)
                ))
            }
            None if db.tree_names().len() > 2 => {
                return Err("trees without a format marker".into());
            }
            None => {
                meta.insert(FORMAT_KEY, FORMAT).map_err(|e| e.to_string())?;
                db.flush().map_err(|e| e.to_string())?;
            }
        }
        Ok(Self {
            db,
            path: path.to_path_buf(),
        })
    }

    fn sled_err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The generation of `projector`'s tree that queries read (0 when never built).
    pub fn active_generation(&self, projector: &str) -> Result<u64, StoreError> {
        let meta = self.db.open_tree("meta").map_err(|e| self.sled_err(e))?;
        let key = format!("active/{projector}");
        Ok(meta
            .get(key)
            .map_err(|e| self.sled_err(e))?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Points queries of `projector` at `generation`.
    pub fn set_active_generation(
        &self,
        projector: &str,
        generation: u64,
    ) -> Result<(), StoreError> {
        let meta = self.db.open_tree("meta").map_err(|e| self.sled_err(e))?;
        meta.insert(format!("active/{projector}"), &generation.to_be_bytes())
            .map_err(|e| self.sled_err(e))?;
        self.db.flush().map_err(|e| self.sled_err(e))?;
        Ok(())
    }

    /// The tree of `projector` at `generation`.
    pub fn tree(&self, projector: &str, generation: u64) -> Result<sled::Tree, StoreError> {
        self.db
            .open_tree(format!("rm/{projector}/{generation}"))
            .map_err(|e| self.sled_err(e))
    }

    /// Deletes a tree no query reads any more.
    pub fn drop_tree(&self, projector: &str, generation: u64) -> Result<(), StoreError> {
        self.db
            .drop_tree(format!("rm/{projector}/{generation}"))
            .map(|_| ())
            .map_err(|e| self.sled_err(e))
    }

    /// Flushes everything to disk (on shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.sled_err(e))
    }
}
