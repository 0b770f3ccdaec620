-- Jobs, their stages and the edges of their DAGs.
CREATE TABLE jobs (
    id          text PRIMARY KEY,
    spec        jsonb NOT NULL,
    state       text NOT NULL DEFAULT 'submitted'
                CHECK (state IN ('submitted', 'running', 'succeeded', 'failed', 'cancelled')),
    error       text,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at  timestamptz,
    finished_at timestamptz
);
-- the job list is paged newest first on (created_at, id), with or without a state filter
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_state_created_idx ON jobs (state, created_at DESC, id DESC);

CREATE TABLE stages (
    job_id           text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    stage_id         text NOT NULL,
    position         int NOT NULL,
    operator         text NOT NULL,
    kind             text NOT NULL,
    parallelism_min  int NOT NULL CHECK (parallelism_min >= 1),
    parallelism_max  int NOT NULL CHECK (parallelism_max >= parallelism_min),
    partitions       int NOT NULL CHECK (partitions >= 1),
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    planned_splits   bigint CHECK (planned_splits >= 0),
    planned_rows     bigint CHECK (planned_rows >= 0),
    splits_done      bigint NOT NULL DEFAULT 0,
    rows_in          bigint NOT NULL DEFAULT 0,
    rows_out         bigint NOT NULL DEFAULT 0,
    dead_letters     bigint NOT NULL DEFAULT 0,
    errors           bigint NOT NULL DEFAULT 0,
    frozen           boolean NOT NULL DEFAULT false,
    pinned_instances int CHECK (pinned_instances >= 0),
    started_at       timestamptz,
    finished_at      timestamptz,
    PRIMARY KEY (job_id, stage_id)
);

CREATE TABLE edges (
    job_id     text NOT NULL,
    from_stage text NOT NULL,
    to_stage   text NOT NULL,
    PRIMARY KEY (job_id, from_stage, to_stage),
    FOREIGN KEY (job_id, from_stage) REFERENCES stages (job_id, stage_id) ON DELETE CASCADE,
    FOREIGN KEY (job_id, to_stage) REFERENCES stages (job_id, stage_id) ON DELETE CASCADE
);

-- One row per instance slot of a stage; a restart of the slot updates it.
CREATE TABLE instances (
    job_id       text NOT NULL,
    stage_id     text NOT NULL,
    instance     int NOT NULL CHECK (instance >= 0),
    pid          int,
    host         text,
    state        text NOT NULL CHECK (state IN ('running', 'stopped', 'crashed')),
    reason       text,
    started_at   timestamptz,
    stopped_at   timestamptz,
    last_metrics jsonb,
    PRIMARY KEY (job_id, stage_id, instance),
    FOREIGN KEY (job_id, stage_id) REFERENCES stages (job_id, stage_id) ON DELETE CASCADE
);

-- Lineage: one row per processed split, and its parent links both ways.
CREATE TABLE splits (
    job_id      text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    split_id    text NOT NULL,
    stage_id    text NOT NULL,
    parents     text[] NOT NULL DEFAULT '{}',
    rows_in     bigint NOT NULL DEFAULT 0,
    rows_out    bigint NOT NULL DEFAULT 0,
    bytes_in    bigint NOT NULL DEFAULT 0,
    bytes_out   bigint NOT NULL DEFAULT 0,
    ms          double precision NOT NULL DEFAULT 0,
    instance    int,
    topic       text,
    "partition" int,
    "offset"    bigint,
    ts          timestamptz NOT NULL,
    PRIMARY KEY (job_id, split_id)
);
CREATE INDEX splits_stage_idx ON splits (job_id, stage_id, split_id);

CREATE TABLE split_edges (
    job_id text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    parent text NOT NULL,
    child  text NOT NULL,
    PRIMARY KEY (job_id, child, parent) -- upward walks
);
CREATE INDEX split_edges_down_idx ON split_edges (job_id, parent, child); -- downward walks

CREATE TABLE partitions_done (
    job_id      text NOT NULL,
    stage_id    text NOT NULL,
    topic       text NOT NULL,
    "partition" int NOT NULL,
    ts          timestamptz NOT NULL,
    PRIMARY KEY (job_id, stage_id, topic, "partition"),
    FOREIGN KEY (job_id, stage_id) REFERENCES stages (job_id, stage_id) ON DELETE CASCADE
);

-- Operator errors grouped by the fingerprint of their normalised message.
CREATE TABLE exceptions (
    job_id         text NOT NULL,
    stage_id       text NOT NULL,
    fingerprint    text NOT NULL,
    code           text,
    count          bigint NOT NULL DEFAULT 0,
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    sample_message text,
    sample_splits  text[] NOT NULL DEFAULT '{}' CHECK (cardinality(sample_splits) <= 10),
    hint           text,
    PRIMARY KEY (job_id, stage_id, fingerprint),
    FOREIGN KEY (job_id, stage_id) REFERENCES stages (job_id, stage_id) ON DELETE CASCADE
);
CREATE INDEX exceptions_count_idx ON exceptions (job_id, count DESC);

CREATE TABLE dead_letters (
    job_id      text NOT NULL,
    stage_id    text NOT NULL,
    split_id    text,
    topic       text NOT NULL,
    "partition" int NOT NULL,
    "offset"    bigint NOT NULL,
    attempts    int NOT NULL DEFAULT 0,
    message     text,
    ts          timestamptz NOT NULL,
    PRIMARY KEY (job_id, stage_id, topic, "partition", "offset"),
    FOREIGN KEY (job_id, stage_id) REFERENCES stages (job_id, stage_id) ON DELETE CASCADE
);

CREATE TABLE stage_metrics (
    job_id     text NOT NULL,
    stage_id   text NOT NULL,
    instance   int NOT NULL,
    ts         timestamptz NOT NULL,
    rows_in    bigint NOT NULL DEFAULT 0,
    rows_out   bigint NOT NULL DEFAULT 0,
    rows_per_s double precision NOT NULL DEFAULT 0,
    rss_bytes  bigint NOT NULL DEFAULT 0,
    cpu_ms     bigint NOT NULL DEFAULT 0,
    total_lag  bigint NOT NULL DEFAULT 0,
    lag        jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (job_id, stage_id, instance, ts),
    FOREIGN KEY (job_id, stage_id) REFERENCES stages (job_id, stage_id) ON DELETE CASCADE
);
CREATE INDEX stage_metrics_latest_idx ON stage_metrics (job_id, stage_id, ts DESC);

-- Positions of the events ingestion: the only place its offsets live.
CREATE TABLE ingest_offsets (
    topic       text NOT NULL,
    "partition" int NOT NULL,
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (topic, "partition")
);
