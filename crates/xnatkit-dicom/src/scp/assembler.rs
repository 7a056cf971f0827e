//! Batching received instances into studies: a study is released once no new
//! instance of it arrived for `idle` (XNAT builds a receiving session after a
//! quiet period; the issue asks for N seconds, default 60).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{InstanceSink, ReceivedInstance};

/// Default quiet period before a study is released.
pub const DEFAULT_STUDY_IDLE: Duration = Duration::from_secs(60);

/// Studies are keyed by called AE title and StudyInstanceUID, so the same study
/// sent to two receivers (possibly routed differently) stays apart.
type StudyKey = (String, String);

struct PendingStudy {
    instances: Vec<ReceivedInstance>,
    last_arrival: Instant,
}

/// Groups [`ReceivedInstance`]s by study and releases each study after `idle`
/// without new instances. Use it directly as the receiver's sink and drain it with
/// [`StudyAssembler::next_ready`] in a loop; call [`StudyAssembler::flush_all`] at shutdown.
pub struct StudyAssembler {
    idle: Duration,
    pending: Mutex<HashMap<StudyKey, PendingStudy>>,
    arrivals: Notify,
}

impl StudyAssembler {
    pub fn new(idle: Duration) -> Self {
        StudyAssembler {
            idle,
            pending: Mutex::new(HashMap::new()),
            arrivals: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StudyKey, PendingStudy>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every change is a single insert/push/remove), so keep using it.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an instance; its study's quiet period starts again.
    pub fn add(&self, instance: ReceivedInstance) {
        let key = (
            instance.called_ae.clone(),
            instance.header.study_instance_uid.clone(),
        );
        let now = Instant::now();
        {
            let mut pending = self.lock();
            let study = pending.entry(key).or_insert_with(|| PendingStudy {
                instances: Vec::new(),
                last_arrival: now,
            });
            study.instances.push(instance);
            study.last_arrival = now;
        }
        self.arrivals.notify_one();
    }

    /// Number of studies still collecting instances.
    pub fn pending_studies(&self) -> usize {
        self.lock().len()
    }

    /// Waits until some study has been quiet for `idle` and returns its instances
    /// (in arrival order). Meant for one consumer task.
    pub async fn next_ready(&self) -> Vec<ReceivedInstance> {
        loop {
            let now = Instant::now();
            let earliest = {
                let mut pending = self.lock();
                let ready = pending
                    .iter()
                    .find(|(_, study)| study.last_arrival + self.idle <= now)
                    .map(|(key, _)| key.clone());
                if let Some(key) = ready
                    && let Some(study) = pending.remove(&key)
                {
                    return study.instances;
                }
                pending.values().map(|s| s.last_arrival + self.idle).min()
            };
            match earliest {
                Some(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = self.arrivals.notified() => {}
                    }
                }
                None => self.arrivals.notified().await,
            }
        }
    }

    /// Releases every pending study at once (for shutdown), oldest activity first.
    pub fn flush_all(&self) -> Vec<Vec<ReceivedInstance>> {
        let mut studies: Vec<PendingStudy> = self.lock().drain().map(|(_, s)| s).collect();
        studies.sort_by_key(|s| s.last_arrival);
        studies.into_iter().map(|s| s.instances).collect()
    }
}

impl InstanceSink for StudyAssembler {
    async fn instance_received(&self, received: ReceivedInstance) -> Result<(), String> {
        self.add(received);
        Ok(())
    }
}
