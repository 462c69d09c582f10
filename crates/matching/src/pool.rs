//! The worker pool: every known worker by id, plus the spatial index of those who can take work,
//! kept up to date incrementally (each change is O(log n) per skill, never a rebuild).

use std::collections::HashMap;

use crate::eligibility::Ineligible;
use crate::geo::{Hot, WorkerIndex, Xyz, to_xyz};
use crate::model::{BitSet64, GeoPoint, Interval, Worker, WorkerId, WorkerStatus};

/// A stored worker and where the index has her, if it does.
#[derive(Debug)]
struct Slot {
    worker: Worker,
    indexed: Option<Key>,
}

/// Where and how the index holds a worker.
type Key = (Xyz, BitSet64, Hot);

/// Workers by id (a slab with a free list, so slot numbers in the index stay stable) and the
/// per-service spatial index.
pub(crate) struct WorkerPool {
    ids: HashMap<WorkerId, u32>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    index: WorkerIndex,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("workers", &self.ids.len())
            .field("index_entries", &self.index.entries())
            .finish()
    }
}

/// Where the index should have a worker: only workers who could be eligible for something
/// (active, contracted, with a valid location and at least one skill) are indexed.
fn index_key(w: &Worker, slot: u32) -> Option<Key> {
    let can_work = w.status == WorkerStatus::Active
        && w.contracted
        && w.location.is_valid()
        && w.skills != BitSet64::EMPTY;
    let hot = Hot {
        slot,
        credit: w.credit,
        load: w.recent_load,
        certificates: w.certificates,
    };
    can_work.then(|| (to_xyz(w.location), w.skills, hot))
}

/// Moves a slot's index entries from `old` to `new` (nothing if equal).
fn reindex(index: &mut WorkerIndex, old: Option<Key>, new: Option<Key>) {
    if old == new {
        return;
    }
    if let Some((at, skills, hot)) = old {
        index.remove(at, skills, hot);
    }
    if let Some((at, skills, hot)) = new {
        index.insert(at, skills, hot);
    }
}

impl WorkerPool {
    pub(crate) fn new() -> Self {
        WorkerPool {
            ids: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            index: WorkerIndex::new(),
        }
    }

    /// Adds a worker or replaces the one with the same id.
    pub(crate) fn upsert(&mut self, worker: Worker) {
        if let Some(&slot) = self.ids.get(&worker.id) {
            if let Some(Some(stored)) = self.slots.get_mut(slot as usize) {
                let key = index_key(&worker, slot);
                reindex(&mut self.index, stored.indexed, key);
                *stored = Slot {
                    worker,
                    indexed: key,
                };
            }
            return;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        let key = index_key(&worker, slot);
        reindex(&mut self.index, None, key);
        self.ids.insert(worker.id, slot);
        if let Some(place) = self.slots.get_mut(slot as usize) {
            *place = Some(Slot {
                worker,
                indexed: key,
            });
        }
    }

    /// Removes a worker; `None` if unknown.
    pub(crate) fn remove(&mut self, id: WorkerId) -> Option<Worker> {
        let slot = self.ids.remove(&id)?;
        let stored = self.slots.get_mut(slot as usize)?.take()?;
        reindex(&mut self.index, stored.indexed, None);
        self.free.push(slot);
        Some(stored.worker)
    }

    /// Moves a worker; false if unknown.
    pub(crate) fn move_to(&mut self, id: WorkerId, to: GeoPoint) -> bool {
        let Some(&slot) = self.ids.get(&id) else {
            return false;
        };
        let Some(Some(stored)) = self.slots.get_mut(slot as usize) else {
            return false;
        };
        stored.worker.location = to;
        let key = index_key(&stored.worker, slot);
        reindex(&mut self.index, stored.indexed, key);
        stored.indexed = key;
        true
    }

    /// Records a booking; false if the worker is unknown. Bookings do not touch the index.
    pub(crate) fn book(&mut self, id: WorkerId, window: Interval) -> Result<(), Ineligible> {
        let stored = self.slot_mut(id).ok_or(Ineligible::UnknownWorker(id))?;
        if let Some(taken) = stored.worker.bookings.iter().find(|b| b.overlaps(&window)) {
            return Err(Ineligible::Booked(*taken));
        }
        stored.worker.bookings.push(window);
        Ok(())
    }

    /// Drops every booking that ended at or before `before`, on every worker.
    pub(crate) fn forget_bookings_before(&mut self, before: i64) {
        for stored in self.slots.iter_mut().flatten() {
            stored.worker.bookings.retain(|b| b.end > before);
        }
    }

    pub(crate) fn get(&self, id: WorkerId) -> Option<&Worker> {
        let slot = *self.ids.get(&id)?;
        self.by_slot(slot)
    }

    /// The slot number of a worker.
    pub(crate) fn slot_of(&self, id: WorkerId) -> Option<u32> {
        self.ids.get(&id).copied()
    }

    /// The worker in a slot.
    pub(crate) fn by_slot(&self, slot: u32) -> Option<&Worker> {
        self.slots
            .get(slot as usize)
            .and_then(Option::as_ref)
            .map(|s| &s.worker)
    }

    /// One past the largest slot number.
    pub(crate) fn slot_bound(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn index(&self) -> &WorkerIndex {
        &self.index
    }

    fn slot_mut(&mut self, id: WorkerId) -> Option<&mut Slot> {
        let slot = *self.ids.get(&id)?;
        self.slots.get_mut(slot as usize)?.as_mut()
    }
}
