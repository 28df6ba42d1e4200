//! The job state machine: states, the changes between them, and which changes are allowed.
//! Pure; the catalogue applies a [`Change`] as one compare-and-set transaction.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a job is in its life.
///
/// ```text
/// queued ──▶ waiting_budget ──▶ submitting   (over budget: waits until the period rolls over or the budget grows)
/// queued ──▶ submitting ──▶ submitted ──▶ downloading ──▶ archived
///   ▲ ▲          │  │            │              │
///   │ └ refused ─┘  └▶ uncertain │ FAIL/gone    │ expired
///   │   (retry)          │       ▼              ▼
///   └── resolve ─────────┘─────▶ failed ◀───────┘
///       --resubmit      --abandon
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted spec, waiting for a submission slot.
    Queued,
    /// A submission is being sent. Written *before* the POST: a crash here means the platform
    /// may or may not have the task.
    Submitting,
    /// The platform accepted the task; polling until it finishes.
    Submitted,
    /// The task succeeded; its result files are being archived.
    Downloading,
    /// Every result file is stored and recorded. Terminal.
    Archived,
    /// Every result file is stored and recorded, but the video is not what the model promises
    /// (the media probe's findings are the job's error message). Terminal.
    ArchivedWithWarnings,
    /// The job ended without a result. Terminal.
    Failed,
    /// A submission may have reached the platform but its answer was lost; a person decides
    /// whether to submit again (and maybe pay twice) or abandon.
    Uncertain,
    /// Its price would exceed a budget: not submitted until the period rolls over or the budget
    /// is raised. The reason is the job's error message.
    WaitingBudget,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 9] = [
        JobState::Queued,
        JobState::Submitting,
        JobState::Submitted,
        JobState::Downloading,
        JobState::Archived,
        JobState::ArchivedWithWarnings,
        JobState::Failed,
        JobState::Uncertain,
        JobState::WaitingBudget,
    ];

    /// The name stored in the catalogue and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Submitting => "submitting",
            JobState::Submitted => "submitted",
            JobState::Downloading => "downloading",
            JobState::Archived => "archived",
            JobState::ArchivedWithWarnings => "archived_with_warnings",
            JobState::Failed => "failed",
            JobState::Uncertain => "uncertain",
            JobState::WaitingBudget => "waiting_budget",
        }
    }

    /// No further change happens by itself.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Archived | JobState::ArchivedWithWarnings | JobState::Failed)
    }

    /// Its results are stored (with or without warnings).
    pub fn is_archived(self) -> bool {
        matches!(self, JobState::Archived | JobState::ArchivedWithWarnings)
    }

    /// Counts against the platform's in-flight limit: from the moment a POST may be sent until
    /// the task is seen finished.
    pub fn is_in_flight(self) -> bool {
        matches!(self, JobState::Submitting | JobState::Submitted)
    }

    /// Whether a job may go from `self` to `to`.
    pub fn can_become(self, to: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, to),
            (Queued, Submitting)
                | (Queued, WaitingBudget)
                | (WaitingBudget, Submitting)
                | (Uncertain, Queued)
                | (Submitting, Submitted)
                | (Submitting, Queued)
                | (Submitting, Uncertain)
                | (Submitted, Uncertain)
                | (Submitted, Downloading)
                | (Downloading, Archived)
                | (Downloading, ArchivedWithWarnings)
                | (Queued | Submitting | Submitted | Downloading | Uncertain | WaitingBudget, Failed)
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`JobState::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown job state `{0}` (states: queued, submitting, submitted, downloading, archived, failed, uncertain, waiting_budget)"
)]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<JobState, UnknownState> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// An error recorded on a job: a stable code and words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// Stable kebab-case code (or `platform-<code>` for the platform's business codes).
    pub code: String,
    /// What happened and what to do.
    pub message: String,
}

impl JobError {
    /// A new error.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> JobError {
        JobError { code: code.into(), message: message.into() }
    }
}

/// One change of a job's state with the data it records. Applied by
/// the catalogue's `transition` only if the job is still in the expected state.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A submission starts: recorded (with a pending ledger row) before the POST.
    Submitting {
        /// The `request_id` this submission sends.
        request_id: String,
    },
    /// The platform accepted the task.
    Submitted {
        /// The platform's task id.
        task_id: String,
    },
    /// The platform refused before acting; try again later.
    Requeue {
        /// Not before this time (unix ms).
        next_attempt_at: i64,
        /// Why it was refused.
        error: JobError,
    },
    /// The answer to a submission was lost; a person must decide.
    Uncertain(JobError),
    /// The task finished with results to archive.
    ResultReady {
        /// The video URL.
        video_url: String,
        /// The cover image URL, if the platform gave one.
        cover_url: Option<String>,
        /// The platform's answer, verbatim.
        result_json: String,
        /// When the links expire, if the platform says (unix ms); else a day from now.
        expires_at: Option<i64>,
    },
    /// Every asset is stored and recorded.
    Archived,
    /// Every asset is stored and recorded; the probe's findings, in words.
    ArchivedWithWarnings(String),
    /// The job ends without a result.
    Failed(JobError),
    /// A person decided an uncertain job should be submitted again, accepting a possible second charge.
    Resubmit,
    /// Its price would exceed a budget; it waits without being sent.
    WaitBudget {
        /// Which budget and when it resets, in words.
        reason: String,
    },
}

impl Change {
    /// The state this change leads to.
    pub fn target(&self) -> JobState {
        match self {
            Change::Submitting { .. } => JobState::Submitting,
            Change::Submitted { .. } => JobState::Submitted,
            Change::Requeue { .. } => JobState::Queued,
            Change::Uncertain(_) => JobState::Uncertain,
            Change::ResultReady { .. } => JobState::Downloading,
            Change::Archived => JobState::Archived,
            Change::ArchivedWithWarnings(_) => JobState::ArchivedWithWarnings,
            Change::Failed(_) => JobState::Failed,
            Change::Resubmit => JobState::Queued,
            Change::WaitBudget { .. } => JobState::WaitingBudget,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>(), Ok(s));
            // Reports and JSON exports say the exact names other tools read.
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::json!(s.as_str())));
        }
        assert!("done".parse::<JobState>().is_err());
    }

    #[test]
    fn terminal_states_go_nowhere() {
        for from in [JobState::Archived, JobState::ArchivedWithWarnings, JobState::Failed] {
            for to in JobState::ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn the_only_way_to_the_platform_is_through_submitting() {
        for from in JobState::ALL {
            if from.can_become(JobState::Submitted) {
                assert_eq!(from, JobState::Submitting);
            }
        }
        assert!(!JobState::Queued.can_become(JobState::Submitted));
        assert!(!JobState::Queued.can_become(JobState::Downloading));
        assert!(!JobState::Submitted.can_become(JobState::Queued), "a task in flight is never resubmitted");
    }

    #[test]
    fn exhaustive_transition_table() {
        let allowed: Vec<(JobState, JobState)> = JobState::ALL
            .into_iter()
            .flat_map(|a| JobState::ALL.into_iter().map(move |b| (a, b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        // 17 with `submitted → uncertain`: a task unfinished past `jobs.task_deadline`.
        assert_eq!(allowed.len(), 17, "{allowed:?}");
    }
}
