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
    let (out, unmoved) = db
        .call(move |c| {
            let mut out = Reconciled::default();
            for job in c.jobs_in(JobState::Submitting)? {
                let error = JobError::new(
                    "submit-interrupted",
                    format!(
                        "vidkeep stopped while this job's submission was being sent; the platform may have accepted \
                         (and charged) it. Check the platform console, then run `vidkeep resolve {} --resubmit` or `--abandon`",
                        job.id
                    ),
                );
                tracing::warn!(job_id = %job.id, "found mid-submission after a restart: marked uncertain");
                c.transition(&job.id, JobState::Submitting, &Change::Uncertain(error))?;
                out.uncertain.push(job.id);
            }
            out.resumed_polls = c.jobs_in(JobState::Submitted)?.len();
            out.resumed_downloads = c.jobs_in(JobState::Downloading)?.len();
            Ok((out, c.running_specs_in_inbox()?))
        })
        .await?;
    for (id, spec_file) in unmoved {
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
            db.call(move |c| c.set_spec_place(&id, SpecPlace::Processing, &file)).await?;
        }
    }
    Ok(out)
}
