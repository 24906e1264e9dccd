//! The sled database that holds every read model.
//!
//! sled 0.34 fsyncs on a timer and has open reports of corruption after unclean shutdowns.
//! That is acceptable only because read models are derived data: a store that fails to open
//! or verify is moved aside and rebuilt from the log, with a log line saying so.

use std::path::{Path, PathBuf};

/// Key in the `meta` tree holding the store's format version.
const FORMAT_KEY: &[u8] = b"format";
/// Bumped when the layout of the store (not of one read model) changes. `/2`: tree digests
/// sum XXH3 entry hashes (SHA-256 before), so a `/1` store's running digests cannot be
/// continued and it is rebuilt from the log. `/3`: trees hold no seen-id keys (JetStream
/// repeats are marked by the log), so a `/2` tree of a JetStream node would keep keys, and a
/// digest, that a replay no longer produces.
const FORMAT: &[u8] = b"ats-read-models/3";
/// What every version of [`FORMAT`] starts with.
const FORMAT_FAMILY: &[u8] = b"ats-read-models/";
/// What the name of every read-model tree starts with: `rm/<projector>/<generation>`.
const TREE_PREFIX: &str = "rm/";

/// The name of `projector`'s tree at `generation`.
fn tree_name(projector: &str, generation: u64) -> String {
    format!("{TREE_PREFIX}{projector}/{generation}")
}

/// The `meta` key holding the generation of `projector` that queries read.
fn active_key(projector: &str) -> String {
    format!("active/{projector}")
}

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
    /// Removing a store of an older layout failed.
    #[error("cannot remove the read-model store {path} of an older layout: {source}")]
    RemoveOutdated {
        /// Where the store lives.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
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

/// Why a store did not open and verify.
enum Unverified {
    /// Another process or handle holds the store's lock: not damage, so nothing is moved.
    InUse(sled::Error),
    /// Damaged or foreign: moved aside.
    Damaged(String),
    /// Written by an older version of this store's layout: derived data that the log
    /// rebuilds, so it is removed rather than kept as evidence of damage.
    Outdated(String),
}

impl Unverified {
    fn from_open(err: sled::Error) -> Self {
        // sled 0.34 has no variant for a held lock: it reports an `Other` I/O error with this
        // message (`Config::try_lock`). Moving a store in use aside would pull it from under
        // the process that holds it.
        match &err {
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::Other
                    && io.to_string().starts_with("could not acquire lock") =>
            {
                Self::InUse(err)
            }
            _ => Self::Damaged(err.to_string()),
        }
    }
}

impl From<String> for Unverified {
    fn from(reason: String) -> Self {
        Self::Damaged(reason)
    }
}

/// The read-model database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
}

/// sled's cache when none is configured, in MiB. sled caches 1 GiB by default; read models
/// are rebuildable, and the memory target is 256 MiB for the whole process. sled's footprint
/// is about twice this setting, and beyond it sled keeps ~20–30 MiB resident per million keys
/// whatever the setting (BENCHMARKS.md, what limits memory): 16 MiB instead of 32 took 35 MiB
/// off the bench's 1M-event serve (245–255 → 210–221 MiB) for 0–30 % of replay speed, and 32
/// instead of 64 had taken 33 MiB off at 200k. A larger store replays faster with more: at 3M
/// events 128 MiB halved a replay (174 → 94 s) for 163 MiB more peak RSS.
pub const DEFAULT_CACHE_MIB: u64 = 16;

impl Store {
    /// Opens the store at `path` with sled's cache at [`DEFAULT_CACHE_MIB`]
    /// ([`Store::open_with_cache`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_MIB)
    }

    /// Opens the store at `path` with a sled cache of `cache_mib` MiB (at least 1); a damaged
    /// or foreign store is moved aside (to `<path>.damaged-<n>`) and a fresh one created, to
    /// be rebuilt from the log. A store another process holds is an error, not damage.
    pub fn open_with_cache(path: impl AsRef<Path>, cache_mib: u64) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let cache_bytes = cache_mib.max(1).saturating_mul(1024 * 1024);
        let open = |path: &Path| Self::open_verified(path, cache_bytes);
        // A store closed a moment ago in this process keeps its file lock until sled's flusher
        // thread has exited: wait briefly (bounded) before calling it in use.
        let mut opened = open(&path);
        for _ in 0..100 {
            if !matches!(opened, Err(Unverified::InUse(_))) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            opened = open(&path);
        }
        match opened {
            Ok(store) => Ok(store),
            Err(Unverified::InUse(source)) => Err(StoreError::Sled { path, source }),
            Err(Unverified::Outdated(found)) => {
                tracing::info!(
                    message = "Read models were written in an older layout; rebuilding them from the log.",
                    path = %path.display(),
                    found = %found,
                    current = %String::from_utf8_lossy(FORMAT)
                );
                std::fs::remove_dir_all(&path).map_err(|source| StoreError::RemoveOutdated {
                    path: path.clone(),
                    source,
                })?;
                Self::open_fresh(&path, cache_bytes)
            }
            Err(Unverified::Damaged(reason)) => {
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
                Self::open_fresh(&path, cache_bytes)
            }
        }
    }

    /// Opens the empty store just created at `path` (after removing or moving the old one).
    fn open_fresh(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        Self::open_verified(path, cache_bytes).map_err(|_| StoreError::Sled {
            path: path.to_path_buf(),
            source: sled::Error::Unsupported("fresh store does not verify".into()),
        })
    }

    fn open_verified(path: &Path, cache_bytes: u64) -> Result<Self, Unverified> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(Unverified::from_open)?;
        let meta = db.open_tree("meta").map_err(|e| e.to_string())?;
        match meta.get(FORMAT_KEY).map_err(|e| e.to_string())? {
            Some(found) if found.as_ref() == FORMAT => {}
            Some(found) if found.starts_with(FORMAT_FAMILY) => {
                return Err(Unverified::Outdated(
                    String::from_utf8_lossy(&found).into_owned(),
                ))
            }
            Some(found) => {
                return Err(Unverified::Damaged(format!(
                    "unknown format {:?}",
                    String::from_utf8_lossy(&found)
                )))
            }
            None if db.tree_names().len() > 2 => {
                return Err(Unverified::Damaged("trees without a format marker".into()));
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

    pub(crate) fn sled_err(&self, source: sled::Error) -> StoreError {
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
        Ok(meta
            .get(active_key(projector))
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
        meta.insert(active_key(projector), &generation.to_be_bytes())
            .map_err(|e| self.sled_err(e))?;
        self.db.flush().map_err(|e| self.sled_err(e))?;
        Ok(())
    }

    /// The tree of `projector` at `generation`.
    pub fn tree(&self, projector: &str, generation: u64) -> Result<sled::Tree, StoreError> {
        self.db
            .open_tree(tree_name(projector, generation))
            .map_err(|e| self.sled_err(e))
    }

    /// Deletes a tree no query reads any more.
    pub fn drop_tree(&self, projector: &str, generation: u64) -> Result<(), StoreError> {
        self.db
            .drop_tree(tree_name(projector, generation))
            .map(|_| ())
            .map_err(|e| self.sled_err(e))
    }

    /// Drops the trees of every projector not in `running`: read models of a projector
    /// this version renamed (a changed fold gets a new name and builds from position 0), or
    /// no longer has, which nothing would read again. Returns their names, in key order.
    pub fn retire_others(&self, running: &[&str]) -> Result<Vec<String>, StoreError> {
        let meta = self.db.open_tree("meta").map_err(|e| self.sled_err(e))?;
        let mut retired = std::collections::BTreeSet::new();
        for name in self.db.tree_names() {
            let Some((projector, _generation)) = std::str::from_utf8(&name)
                .ok()
                .and_then(|n| n.strip_prefix(TREE_PREFIX))
                .and_then(|n| n.rsplit_once('/'))
            else {
                continue;
            };
            if running.contains(&projector) {
                continue;
            }
            self.db.drop_tree(&name).map_err(|e| self.sled_err(e))?;
            meta.remove(active_key(projector))
                .map_err(|e| self.sled_err(e))?;
            retired.insert(projector.to_owned());
        }
        if !retired.is_empty() {
            self.flush()?;
        }
        Ok(retired.into_iter().collect())
    }

    /// Flushes everything to disk (on shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.sled_err(e))
    }
}
