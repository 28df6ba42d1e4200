//! The tables `catalog copy` moves, with their columns and how each is read in key order.

/// How a table is read in key order.
#[derive(Debug, Clone, Copy)]
pub(super) enum Order {
    /// By its first column, an integer key (`rowid`, `id`).
    Key,
    /// By its job's rowid, then by this column, if the job has several rows.
    ByJob(Option<&'static str>),
    /// A small table (a row per daemon or per account signal), read whole in this order.
    Whole(&'static str),
}

/// A table the copy moves: its columns (every column of the schema both backends share), how
/// pages are read, and what PostgreSQL needs around explicit ids.
#[derive(Debug)]
pub(super) struct Table {
    pub(super) name: &'static str,
    pub(super) columns: &'static [&'static str],
    pub(super) order: Order,
    /// Columns of floating-point numbers (rendered as such even if SQLite answers an integer).
    pub(super) real: &'static [&'static str],
    /// The column whose identity sequence (PostgreSQL) must move past the copied ids.
    pub(super) identity: Option<&'static str>,
    /// Whether that column is `GENERATED ALWAYS` (an explicit value needs `OVERRIDING SYSTEM VALUE`).
    pub(super) always: bool,
    /// Kept by triggers on `jobs`: checked, not copied.
    pub(super) by_trigger: bool,
}

/// The catalogue's tables in an order that satisfies their foreign keys, with the columns of
/// SQLite's schema version 10 and PostgreSQL's version 2 (a test keeps them complete).
pub(super) const TABLES: &[Table] = &[
    Table {
        name: "jobs",
        columns: &[
            "rowid",
            "id",
            "spec_name",
            "spec_file",
            "spec_place",
            "spec_sha256",
            "spec_format",
            "fingerprint",
            "model",
            "prompt",
            "name",
            "project",
            "tags",
            "request_display",
            "price_fen",
            "state",
            "attempts",
            "next_attempt_at",
            "request_id",
            "task_id",
            "video_url",
            "cover_url",
            "result_json",
            "error_code",
            "error_message",
            "created_at",
            "submitted_at",
            "result_at",
            "archived_at",
            "finished_at",
            "updated_at",
            "take_group",
            "take_no",
            "expires_at",
            "owner",
            "origin",
        ],
        order: Order::Key,
        real: &[],
        identity: Some("rowid"),
        always: true,
        by_trigger: false,
    },
    Table {
        name: "job_requests",
        columns: &["job_id", "body"],
        order: Order::ByJob(None),
        real: &[],
        identity: None,
        always: false,
        by_trigger: false,
    },
    Table {
        name: "submissions",
        columns: &[
            "id",
            "job_id",
            "request_id",
            "started_at",
            "outcome",
            "task_id",
            "error_code",
            "finished_at",
            "price_fen",
        ],
        order: Order::Key,
        real: &[],
        identity: Some("id"),
        always: false,
        by_trigger: false,
    },
    Table {
        name: "assets",
        columns: &[
            "job_id",
            "kind",
            "key",
            "sha256",
            "bytes",
            "content_type",
            "source_url",
            "stored_at",
            "checked_at",
            "check_result",
            "probe_duration_s",
            "probe_fps",
            "probe_width",
            "probe_height",
            "probe_codec",
            "probe_findings",
        ],
        order: Order::ByJob(Some("kind")),
        real: &["probe_duration_s", "probe_fps"],
        identity: None,
        always: false,
        by_trigger: false,
    },
    Table {
        name: "job_events",
        columns: &["id", "job_id", "at", "from_state", "to_state", "note"],
        order: Order::Key,
        real: &[],
        identity: Some("id"),
        always: false,
        by_trigger: false,
    },
    Table {
        name: "rejections",
        columns: &["id", "spec_name", "spec_sha256", "error_code", "error_message", "at"],
        order: Order::Key,
        real: &[],
        identity: Some("id"),
        always: false,
        by_trigger: false,
    },
    Table {
        name: "asset_checks",
        columns: &["id", "job_id", "key", "at", "result", "detail"],
        order: Order::Key,
        real: &[],
        identity: Some("id"),
        always: false,
        by_trigger: false,
    },
    Table {
        name: "job_tags",
        columns: &["job_id", "tag", "created_at"],
        order: Order::ByJob(Some("tag")),
        real: &[],
        identity: None,
        always: false,
        by_trigger: true,
    },
    Table {
        name: "job_inputs",
        columns: &["job_id", "idx", "sha256", "key", "bytes", "content_type", "url"],
        order: Order::ByJob(Some("idx")),
        real: &[],
        identity: None,
        always: false,
        by_trigger: false,
    },
    Table {
        name: "outbox",
        columns: &[
            "id",
            "sink",
            "event",
            "job_id",
            "body",
            "dedupe",
            "created_at",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "delivered_at",
        ],
        order: Order::Key,
        real: &[],
        identity: Some("id"),
        always: false,
        by_trigger: false,
    },
    Table {
        name: "daemons",
        columns: &["id", "host", "pid", "started_at", "heartbeat_at", "lease_until"],
        order: Order::Whole("id"),
        real: &[],
        identity: None,
        always: false,
        by_trigger: false,
    },
    Table {
        name: "account_signals",
        columns: &["kind", "model", "value", "code", "reason", "until"],
        order: Order::Whole("kind, model"),
        real: &[],
        identity: None,
        always: false,
        by_trigger: false,
    },
];

/// The largest rowid of the next page of jobs after `?1`, `?2` jobs long (`NULL`: none left).
pub(super) const NEXT_JOBS: &str =
    "SELECT MAX(r) FROM (SELECT rowid AS r FROM jobs WHERE rowid > ?1 ORDER BY rowid LIMIT ?2) AS page";
