//! A batch's window onto one projector tree: reads through, writes buffered.

use std::any::Any;
use std::collections::BTreeMap;

use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};

use crate::runtime::ApplyError;

/// A value a read model stores: MessagePack with named fields.
pub trait Record: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Record for T {}

type Encoder = fn(&dyn Any) -> Result<Vec<u8>, String>;

fn encoder<T: Record>(value: &dyn Any) -> Result<Vec<u8>, String> {
    let value = value
        .downcast_ref::<T>()
        .ok_or_else(|| "read-model value of an unexpected type".to_owned())?;
    rmp_serde::to_vec_named(value).map_err(|e| e.to_string())
}

enum Value {
    /// Decoded, possibly changed; encoded once at commit.
    Typed {
        value: Box<dyn Any + Send>,
        encode: Encoder,
    },
    /// Raw bytes (`None` = deleted).
    Raw(Option<Vec<u8>>),
}

struct Slot {
    /// Hash of the bytes stored in the tree before this batch (0 = absent), so the running
    /// digest can take the old entry out.
    old_hash: u64,
    value: Value,
    dirty: bool,
}

/// Hash of one tree entry, summed (wrapping) over all entries into the tree digest: an
/// order-independent digest that a batch updates from the entries it changes.
pub(crate) fn entry_hash(key: &[u8], value: &[u8]) -> u64 {
    let mut hash = Sha256::new();
    hash.update((key.len() as u64).to_be_bytes());
    hash.update(key);
    hash.update(value);
    let out = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&out[..8]);
    u64::from_be_bytes(first)
}

/// The read-model state a projector sees while folding one batch.
///
/// Keys are loaded from the tree on first touch, then served from memory; at the end of the
/// batch every changed key is encoded and written once, with the checkpoint, in one atomic
/// sled batch. Keys iterate in byte order (a `BTreeMap`), so the write is deterministic.
pub struct View<'a> {
    tree: &'a sled::Tree,
    slots: BTreeMap<Vec<u8>, Slot>,
}

fn storage(err: impl std::fmt::Display) -> ApplyError {
    ApplyError::Storage(err.to_string())
}

impl<'a> View<'a> {
    pub(crate) fn new(tree: &'a sled::Tree) -> Self {
        Self {
            tree,
            slots: BTreeMap::new(),
        }
    }

    fn load(&mut self, key: &[u8]) -> Result<&mut Slot, ApplyError> {
        if !self.slots.contains_key(key) {
            let stored = self.tree.get(key).map_err(storage)?;
            let old_hash = stored.as_ref().map_or(0, |v| entry_hash(key, v));
            let slot = Slot {
                old_hash,
                value: Value::Raw(stored.map(|v| v.to_vec())),
                dirty: false,
            };
            self.slots.insert(key.to_vec(), slot);
        }
        self.slots
            .get_mut(key)
            .ok_or_else(|| ApplyError::Storage("slot vanished".into()))
    }

    fn typed<T: Record>(&mut self, key: &[u8]) -> Result<Option<&mut T>, ApplyError> {
        let slot = self.load(key)?;
        if let Value::Raw(raw) = &slot.value {
            slot.value = match raw {
                None => return Ok(None),
                Some(bytes) => Value::Typed {
                    value: Box::new(rmp_serde::from_slice::<T>(bytes).map_err(|e| {
                        ApplyError::Storage(format!(
                            "cannot decode read-model key {}: {e}",
                            String::from_utf8_lossy(key)
                        ))
                    })?),
                    encode: encoder::<T>,
                },
            };
        }
        match &mut slot.value {
            Value::Typed { value, .. } => value.downcast_mut::<T>().map(Some).ok_or_else(|| {
                ApplyError::Storage(format!(
                    "read-model key {} read as another type",
                    String::from_utf8_lossy(key)
                ))
            }),
            Value::Raw(_) => Ok(None),
        }
    }

    /// The value at `key`, if any.
    pub fn get<T: Record>(&mut self, key: &[u8]) -> Result<Option<&T>, ApplyError> {
        Ok(self.typed::<T>(key)?.map(|v| &*v))
    }

    /// The value at `key` for change, if any.
    pub fn get_mut<T: Record>(&mut self, key: &[u8]) -> Result<Option<&mut T>, ApplyError> {
        if self.typed::<T>(key)?.is_some() {
            self.load(key)?.dirty = true;
        }
        self.typed::<T>(key)
    }

    /// The value at `key` for change, created with `init` when absent.
    pub fn entry<T: Record>(
        &mut self,
        key: &[u8],
        init: impl FnOnce() -> T,
    ) -> Result<&mut T, ApplyError> {
        if self.typed::<T>(key)?.is_none() {
            self.put(key, init())?;
        }
        self.load(key)?.dirty = true;
        self.typed::<T>(key)?
            .ok_or_else(|| ApplyError::Storage("entry vanished".into()))
    }

    /// Stores `value` at `key`.
    pub fn put<T: Record>(&mut self, key: &[u8], value: T) -> Result<(), ApplyError> {
        let slot = self.load(key)?;
        slot.value = Value::Typed {
            value: Box::new(value),
            encode: encoder::<T>,
        };
        slot.dirty = true;
        Ok(())
    }

    /// Stores raw bytes at `key` (index entries, counters).
    pub fn put_raw(&mut self, key: &[u8], value: Vec<u8>) -> Result<(), ApplyError> {
        let slot = self.load(key)?;
        slot.value = Value::Raw(Some(value));
        slot.dirty = true;
        Ok(())
    }

    /// Raw bytes at `key`.
    pub fn get_raw(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, ApplyError> {
        let slot = self.load(key)?;
        match &slot.value {
            Value::Raw(raw) => Ok(raw.clone()),
            Value::Typed { value, encode } => encode(value.as_ref()).map(Some).map_err(storage),
        }
    }

    /// Deletes `key`.
    pub fn remove(&mut self, key: &[u8]) -> Result<(), ApplyError> {
        let slot = self.load(key)?;
        slot.value = Value::Raw(None);
        slot.dirty = true;
        Ok(())
    }

    /// Encodes every changed key into `batch` and returns the change to the tree digest.
    pub(crate) fn into_batch(self, batch: &mut sled::Batch) -> Result<(u64, u64), ApplyError> {
        let (mut added, mut removed) = (0u64, 0u64);
        for (key, slot) in self.slots {
            if !slot.dirty {
                continue;
            }
            let bytes = match slot.value {
                Value::Raw(raw) => raw,
                Value::Typed { value, encode } => Some(encode(value.as_ref()).map_err(storage)?),
            };
            removed = removed.wrapping_add(slot.old_hash);
            match bytes {
                Some(bytes) => {
                    added = added.wrapping_add(entry_hash(&key, &bytes));
                    batch.insert(key, bytes);
                }
                None => batch.remove(key),
            }
        }
        Ok((added, removed))
    }
}
