//! A batch's window onto one projector tree: reads through, writes buffered.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};

use hashbrown::hash_map::EntryRef;
use hashbrown::HashMap;

use serde::{de::DeserializeOwned, Serialize};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed, Xxh3DefaultBuilder};

use crate::runtime::ApplyError;

/// A value a read model stores, in MessagePack (see [`Encoding`]).
pub trait Record: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Record for T {}

/// How a projector's tree encodes its structs. Readers need not know: MessagePack decodes a
/// struct from either form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Fields by name (a map): robust to any serde attribute.
    Named,
    /// Fields by position (an array): a third of the bytes for records of many short fields,
    /// for trees that write one or more records per event. Only for types whose fields are
    /// always all serialized: `skip_serializing_if` or `flatten` would shift the positions.
    Positional,
}

type Encoder = fn(&dyn Any) -> Result<Vec<u8>, String>;

/// A key and its stored bytes.
pub type Entry = (Vec<u8>, Vec<u8>);

fn downcast<T: Record>(value: &dyn Any) -> Result<&T, String> {
    value
        .downcast_ref::<T>()
        .ok_or_else(|| "read-model value of an unexpected type".to_owned())
}

fn named<T: Record>(value: &dyn Any) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec_named(downcast::<T>(value)?).map_err(|e| e.to_string())
}

fn positional<T: Record>(value: &dyn Any) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec(downcast::<T>(value)?).map_err(|e| e.to_string())
}

enum Value {
    /// Decoded, possibly changed; encoded once at commit.
    Typed {
        value: Box<dyn Any + Send>,
        encode: Encoder,
    },
    /// What the tree held before this batch (`Slot::old`), untouched: no copy of the bytes.
    Stored,
    /// Raw bytes (`None` = deleted).
    Raw(Option<Vec<u8>>),
}

struct Slot {
    /// The bytes stored in the tree before this batch (`None` = absent): a cheap shared
    /// handle, so a key that is only read costs no copy and no hash, and the running digest
    /// can take the old entry out (hashed only when the key really changes).
    old: Option<sled::IVec>,
    value: Value,
    dirty: bool,
}

/// Hash of one tree entry, summed (wrapping) over all entries into the tree digest: an
/// order-independent digest that a batch updates from the entries it changes.
///
/// XXH3 with its fixed default secret: stable across runs, machines and builds (unlike std's
/// randomly keyed hasher), and an order of magnitude cheaper than the SHA-256 it replaced.
/// The digest detects divergence between a live fold and a replay; it is no defence against
/// an adversary, who could not write a read model anyway. The key's hash seeds the value's,
/// so `(ab, c)` and `(a, bc)` hash apart.
pub(crate) fn entry_hash(key: &[u8], value: &[u8]) -> u64 {
    xxh3_64_with_seed(value, xxh3_64(key))
}

/// The read-model state a projector sees while folding one batch.
///
/// Keys are loaded from the tree on first touch, then served from memory; at the end of the
/// batch every changed key is encoded and written once, in key order, with the checkpoint
/// (one commit: see `runtime::commit_writes`). The slots are a hash map (a batch touches
/// thousands of keys, and an ordered map's comparisons were a tenth of a replay): the
/// changes are sorted once at the end, and the digest is a sum, so their order in the map
/// changes nothing.
pub struct View<'a> {
    tree: &'a sled::Tree,
    encoding: Encoding,
    slots: HashMap<Vec<u8>, Slot, Xxh3DefaultBuilder>,
    /// The keys written with [`View::put_ordered`], which [`View::range`] reads.
    ordered: BTreeSet<Vec<u8>>,
}

fn storage(err: impl std::fmt::Display) -> ApplyError {
    ApplyError::Storage(err.to_string())
}

impl<'a> View<'a> {
    pub(crate) fn new(tree: &'a sled::Tree, encoding: Encoding) -> Self {
        Self {
            tree,
            encoding,
            slots: HashMap::default(),
            ordered: BTreeSet::new(),
        }
    }

    /// The encoder of `T` in this tree: one per tree, so a value's bytes never depend on the
    /// path that touched it first.
    fn encoder<T: Record>(&self) -> Encoder {
        match self.encoding {
            Encoding::Named => named::<T>,
            Encoding::Positional => positional::<T>,
        }
    }

    /// The slot of `key`, read from the tree on first touch: one hash probe either way.
    fn load(&mut self, key: &[u8]) -> Result<&mut Slot, ApplyError> {
        match self.slots.entry_ref(key) {
            EntryRef::Occupied(slot) => Ok(slot.into_mut()),
            EntryRef::Vacant(vacant) => {
                let old = self.tree.get(key).map_err(storage)?;
                Ok(vacant.insert(Slot {
                    old,
                    value: Value::Stored,
                    dirty: false,
                }))
            }
        }
    }

    fn typed<T: Record>(&mut self, key: &[u8]) -> Result<Option<&mut T>, ApplyError> {
        let encode = self.encoder::<T>();
        typed_in(self.load(key)?, key, encode)
    }

    /// The value at `key`, if any.
    pub fn get<T: Record>(&mut self, key: &[u8]) -> Result<Option<&T>, ApplyError> {
        Ok(self.typed::<T>(key)?.map(|v| &*v))
    }

    /// The value at `key` for change, if any.
    pub fn get_mut<T: Record>(&mut self, key: &[u8]) -> Result<Option<&mut T>, ApplyError> {
        let encode = self.encoder::<T>();
        let slot = self.load(key)?;
        if typed_in::<T>(slot, key, encode)?.is_some() {
            slot.dirty = true;
        }
        typed_in(slot, key, encode)
    }

    /// The value at `key` for change, created with `init` when absent.
    pub fn entry<T: Record>(
        &mut self,
        key: &[u8],
        init: impl FnOnce() -> T,
    ) -> Result<&mut T, ApplyError> {
        let encode = self.encoder::<T>();
        let slot = self.load(key)?;
        if typed_in::<T>(slot, key, encode)?.is_none() {
            slot.value = Value::Typed {
                value: Box::new(init()),
                encode,
            };
        }
        slot.dirty = true;
        typed_in(slot, key, encode)?.ok_or_else(|| ApplyError::Storage("entry vanished".into()))
    }

    /// Stores `value` at `key`.
    pub fn put<T: Record>(&mut self, key: &[u8], value: T) -> Result<(), ApplyError> {
        let encode = self.encoder::<T>();
        let slot = self.load(key)?;
        slot.value = Value::Typed {
            value: Box::new(value),
            encode,
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
            Value::Stored => Ok(slot.old.as_ref().map(|v| v.to_vec())),
            Value::Raw(raw) => Ok(raw.clone()),
            Value::Typed { value, encode } => encode(value.as_ref()).map(Some).map_err(storage),
        }
    }

    /// Stores raw bytes at `key`, a key that [`View::range`] may be asked for in this batch.
    ///
    /// A range read sees the tree's keys with this batch's changes over them, but a key the
    /// batch creates only when it was written here: the slots are a hash map, and keeping
    /// every new key in order too would cost each of them a comparison-sorted insert, for
    /// the few trees that read ranges while folding.
    pub fn put_ordered(&mut self, key: &[u8], value: Vec<u8>) -> Result<(), ApplyError> {
        self.put_raw(key, value)?;
        self.ordered.insert(key.to_vec());
        Ok(())
    }

    /// The entries with keys in `range` as this batch sees them, in key order: the tree's,
    /// with this batch's changes over them, and the keys the batch created with
    /// [`View::put_ordered`]. Its cost is the range's length: for ranges kept short (a
    /// late event's neighbours, not an operator's history).
    pub fn range(
        &mut self,
        range: (std::ops::Bound<&[u8]>, std::ops::Bound<&[u8]>),
    ) -> Result<Vec<Entry>, ApplyError> {
        let mut entries: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for entry in self.tree.range::<&[u8], _>(range) {
            let (key, value) = entry.map_err(storage)?;
            entries.insert(key.to_vec(), Some(value.to_vec()));
        }
        for key in self.ordered.range::<[u8], _>(range) {
            entries.entry(key.clone()).or_insert(None);
        }
        let mut seen = Vec::with_capacity(entries.len());
        for (key, stored) in entries {
            let value = match self.slots.get(&key) {
                Some(slot) if slot.dirty => match &slot.value {
                    Value::Stored => stored,
                    Value::Raw(raw) => raw.clone(),
                    Value::Typed { value, encode } => {
                        Some(encode(value.as_ref()).map_err(storage)?)
                    }
                },
                _ => stored,
            };
            if let Some(value) = value {
                seen.push((key, value));
            }
        }
        Ok(seen)
    }

    /// Deletes `key`.
    pub fn remove(&mut self, key: &[u8]) -> Result<(), ApplyError> {
        let slot = self.load(key)?;
        slot.value = Value::Raw(None);
        slot.dirty = true;
        Ok(())
    }

    /// Encodes every changed key: the writes in key order, and the change to the tree digest.
    ///
    /// A key touched for change but encoding to the bytes it already had (a profile merely
    /// looked up through `entry`) is left out: the tree and its digest are the same either
    /// way, and a sled write costs far more than the comparison.
    pub(crate) fn into_changes(self) -> Result<Changes, ApplyError> {
        let mut changes = Changes::default();
        for (key, slot) in self.slots {
            if !slot.dirty {
                continue;
            }
            let bytes = match slot.value {
                Value::Stored => continue,
                Value::Raw(raw) => raw,
                Value::Typed { value, encode } => Some(encode(value.as_ref()).map_err(storage)?),
            };
            if bytes.as_deref() == slot.old.as_deref() {
                continue;
            }
            if let Some(old) = &slot.old {
                changes.removed = changes.removed.wrapping_add(entry_hash(&key, old));
            }
            if let Some(bytes) = &bytes {
                changes.added = changes.added.wrapping_add(entry_hash(&key, bytes));
            }
            changes.writes.push((key, bytes));
        }
        // In key order, as sled's own batches applied them: neighbouring keys share leaves.
        changes.writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(changes)
    }
}

/// The `T` in `slot`, decoded from its bytes on first use; `None` when the key holds nothing.
fn typed_in<'s, T: Record>(
    slot: &'s mut Slot,
    key: &[u8],
    encode: Encoder,
) -> Result<Option<&'s mut T>, ApplyError> {
    let decoded = match &slot.value {
        Value::Typed { .. } => None,
        Value::Stored | Value::Raw(_) => {
            let raw = match &slot.value {
                Value::Raw(raw) => raw.as_deref(),
                _ => slot.old.as_deref(),
            };
            let Some(bytes) = raw else {
                return Ok(None);
            };
            Some(rmp_serde::from_slice::<T>(bytes).map_err(|e| {
                ApplyError::Storage(format!(
                    "cannot decode read-model key {}: {e}",
                    String::from_utf8_lossy(key)
                ))
            })?)
        }
    };
    if let Some(decoded) = decoded {
        slot.value = Value::Typed {
            value: Box::new(decoded),
            encode,
        };
    }
    match &mut slot.value {
        Value::Typed { value, .. } => value.downcast_mut::<T>().map(Some).ok_or_else(|| {
            ApplyError::Storage(format!(
                "read-model key {} read as another type",
                String::from_utf8_lossy(key)
            ))
        }),
        Value::Stored | Value::Raw(_) => Ok(None),
    }
}

/// What a batch changed in its tree: see [`View::into_changes`].
#[derive(Default)]
pub(crate) struct Changes {
    /// Keys in order, each with its new bytes (`None` = removed).
    pub writes: crate::runtime::Writes,
    /// Sum of the hashes of the entries written.
    pub added: u64,
    /// Sum of the hashes of the entries they replaced.
    pub removed: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    #[test]
    fn a_range_sees_the_batch_over_the_tree() {
        use std::ops::Bound::{Excluded, Included};
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        for key in ["a/1", "a/2", "a/3", "a/6", "b/1"] {
            tree.insert(key, key.as_bytes()).unwrap();
        }
        let mut view = View::new(&tree, Encoding::Named);
        view.remove(b"a/2").unwrap();
        view.put(b"a/3", 7u8).unwrap();
        view.put_ordered(b"a/4", b"ordered".to_vec()).unwrap();
        view.put_ordered(b"a/0", b"before the range".to_vec())
            .unwrap();
        view.put_ordered(b"b/0", b"after the range".to_vec())
            .unwrap();
        // Created in this batch without `put_ordered`: not a key a range reads.
        view.put_raw(b"a/5", b"unordered".to_vec()).unwrap();
        // Read, not changed: the tree's bytes.
        let _ = view.get_raw(b"a/6").unwrap();
        let entries = view
            .range((Excluded(b"a/0".as_slice()), Included(b"a/9".as_slice())))
            .unwrap();
        let expected: Vec<Entry> = vec![
            (b"a/1".to_vec(), b"a/1".to_vec()),
            (b"a/3".to_vec(), rmp_serde::to_vec_named(&7u8).unwrap()),
            (b"a/4".to_vec(), b"ordered".to_vec()),
            (b"a/6".to_vec(), b"a/6".to_vec()),
        ];
        assert_eq!(entries, expected);
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        requests: u64,
        cost: f64,
        label: Option<String>,
    }

    /// A positional tree stores arrays, which the readers' `rmp_serde::from_slice` decodes as
    /// it does maps; the same value is the same bytes whatever touched it first.
    #[test]
    fn positional_values_are_arrays_and_read_back() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let sample = || Sample {
            requests: 3,
            cost: 0.25,
            label: None,
        };
        let mut view = View::new(&tree, Encoding::Positional);
        view.put(b"put", sample()).unwrap();
        view.entry(b"entry", sample).unwrap();
        for (key, value) in view.into_changes().unwrap().writes {
            tree.insert(key, value.unwrap()).unwrap();
        }
        let stored = tree.get(b"put").unwrap().unwrap();
        assert_eq!(stored, tree.get(b"entry").unwrap().unwrap());
        assert_eq!(stored.as_ref(), rmp_serde::to_vec(&sample()).unwrap());
        let named = rmp_serde::to_vec_named(&sample()).unwrap();
        assert!(
            stored.len() < named.len(),
            "{} vs {}",
            stored.len(),
            named.len()
        );
        assert_eq!(rmp_serde::from_slice::<Sample>(&stored).unwrap(), sample());

        // A later batch reads the array back, changes it, and writes an array again.
        let mut view = View::new(&tree, Encoding::Positional);
        view.get_mut::<Sample>(b"put").unwrap().unwrap().requests += 1;
        for (key, value) in view.into_changes().unwrap().writes {
            tree.insert(key, value.unwrap()).unwrap();
        }
        let changed = Sample {
            requests: 4,
            ..sample()
        };
        assert_eq!(
            tree.get(b"put").unwrap().unwrap().as_ref(),
            rmp_serde::to_vec(&changed).unwrap()
        );
    }
}
