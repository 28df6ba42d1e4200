//! Crash repair, run once at start before any worker.
//!
//! | found at start                  | what happens                                                        |
//! |---------------------------------|---------------------------------------------------------------------|
//! | `submitting`                    | `uncertain`: the POST may have reached the platform; a person decides |
//! | `submitted`                     | nothing: the engine polls it again                                  |
//! | `downloading`                   | nothing: the engine downloads what is not recorded yet              |
//! | spec file still in the inbox    | moved to `processing/` (the crash came between record and move)     |
//! | finished job, spec not settled  | the engine's first pass writes the report and moves the spec        |

use super::{Change, JobError, JobState};
use crate::catalog::{CatalogError, Db};
use crate::domain::{Inbox, SpecPlace};
use crate::report;

/// What reconcile did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Jobs found mid-submission and made `uncertain`.
    pub uncertain: Vec<String>,
    /// Jobs in flight that polling resumes.
    pub resumed_polls: usize,
    /// Jobs whose downloads restart.
    pub resumed_downloads: usize,
}

/// Repairs the catalogue after an unclean stop. Reads only the jobs that are not final (a
/// catalogue of a million archived jobs starts as fast as an empty one), and moves spec files
/// outside the catalogue lock.
pub async fn reconcile(db: &Db, inbox: &Inbox) -> Result<Reconciled, CatalogError> {
    let mut out = Reconciled::default();
    for job in db.jobs_in(JobState::Submitting).await? {
        let error = JobError::new(
            "submit-interrupted",
            format!(
                "vidkeep stopped while this job's submission was being sent; the platform may have accepted \
                         (and charged) it. Check the platform console, then run `vidkeep resolve {} --resubmit` or `--abandon`",
                job.id
            ),
        );
        tracing::warn!(job_id = %job.id, "found mid-submission after a restart: marked uncertain");
        db.transition(&job.id, JobState::Submitting, Change::Uncertain(error)).await?;
        out.uncertain.push(job.id);
    }
    out.resumed_polls = db.jobs_in(JobState::Submitted).await?.len();
    out.resumed_downloads = db.jobs_in(JobState::Downloading).await?.len();
    for (id, spec_file) in db.running_specs_in_inbox().await? {
        let inbox = inbox.clone();
        let tag = id.clone();
        let moved = tokio::task::spawn_blocking(move || {
            let from = inbox.root().join(&spec_file);
            from.exists()
                .then(|| report::move_unique(&from, &spec_file, &inbox.folder(SpecPlace::Processing), &tag).ok())
                .flatten()
        })
        .await
        .ok()
        .flatten();
        if let Some(file) = moved {
            db.set_spec_places(vec![(id, SpecPlace::Processing, file)]).await?;
        }
    }
    Ok(out)
}
