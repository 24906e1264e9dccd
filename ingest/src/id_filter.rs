//! A Bloom filter of event ids, in front of an id index's redb table: most appended ids
//! are new, and once a table outgrew its cache, looking a new id up cost a random leaf read.

/// A Bloom filter of event ids: "not held" for sure, or "maybe".
///
/// Ten to twenty bits per id (the bit count is a power of two) and six probes: under 1 %
/// false positives at capacity. Hand-written: with ids that are already random, it is a
/// bit array and a mixer.
pub(crate) struct IdFilter {
    words: Vec<u64>,
    /// Bits − 1 (the bit count is a power of two).
    mask: u64,
    held: usize,
    capacity: usize,
}

impl IdFilter {
    const PROBES: u64 = 6;
    const BITS_PER_ID: usize = 10;

    /// An empty filter sized for `capacity` ids.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let bits = (capacity.max(1) * Self::BITS_PER_ID)
            .next_power_of_two()
            .max(64);
        Self {
            words: vec![0; bits / 64],
            mask: bits as u64 - 1,
            held: 0,
            capacity: capacity.max(1),
        }
    }

    /// The probe sequence of `id` (double hashing over two mixed halves: ids of any UUID
    /// version, time-ordered ones included, spread evenly).
    fn probes(mask: u64, id: u128) -> impl Iterator<Item = u64> {
        fn mix(mut x: u64) -> u64 {
            // splitmix64's finaliser
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        }
        let (hi, lo) = ((id >> 64) as u64, id as u64);
        let h1 = mix(lo ^ hi.rotate_left(32));
        let h2 = mix(hi ^ 0x9e37_79b9_7f4a_7c15) | 1;
        (0..Self::PROBES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & mask)
    }

    pub(crate) fn insert(&mut self, id: u128) {
        for bit in Self::probes(self.mask, id) {
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        self.held += 1;
    }

    /// False only for an id never inserted.
    pub(crate) fn may_hold(&self, id: u128) -> bool {
        Self::probes(self.mask, id)
            .all(|bit| self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    /// A filter of every id in `tables` and of `also` (ids held beside them), sized for twice
    /// as many, and for at least `min_ids`.
    pub(crate) fn of_tables(
        tables: &[redb::Table<'_, u128, (u64, u64)>],
        also: &[u128],
        min_ids: usize,
    ) -> Result<Self, redb::StorageError> {
        use redb::{ReadableTable, ReadableTableMetadata};
        let mut held = also.len();
        for table in tables {
            held += table.len()? as usize;
        }
        let mut filter = Self::with_capacity((2 * held).max(min_ids));
        for table in tables {
            for entry in table.iter()? {
                filter.insert(entry?.0.value());
            }
        }
        for id in also {
            filter.insert(*id);
        }
        Ok(filter)
    }

    /// More ids than it was sized for (false positives climb past 1 %).
    pub(crate) fn is_full(&self) -> bool {
        self.held > self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::IdFilter;

    /// Ids as the log sees them, numbered from `from`: UUID v5 of strings, and time-ordered
    /// v7-like ones.
    fn ids(from: u32, n: u32) -> Vec<u128> {
        (from..from + n)
            .flat_map(|i| {
                let v5 = ats_events::cloudevents::event_id(&format!("e{i}")).as_u128();
                let v7_like = (u128::from(i) << 80) | (0x7000 << 64) | u128::from(i);
                [v5, v7_like]
            })
            .collect()
    }

    #[test]
    fn the_filter_never_forgets_and_rarely_imagines() {
        let held = ids(0, 5_000);
        let mut filter = IdFilter::with_capacity(held.len());
        for id in &held {
            filter.insert(*id);
        }
        assert!(held.iter().all(|id| filter.may_hold(*id)));
        assert!(!filter.is_full());
        let others = ids(1 << 24, 50_000);
        let imagined = others.iter().filter(|id| filter.may_hold(**id)).count();
        // Ten bits per id and six probes: ~0.8 % at capacity.
        assert!(
            imagined * 100 < others.len() * 2,
            "{imagined} of {}",
            others.len()
        );
        filter.insert(0);
        assert!(filter.is_full());
    }
}
