/**
 * Versioned migrations. Each entry runs once, in order, inside one transaction, and bumps
 * `PRAGMA user_version`; a released migration is never edited, only followed by a new one.
 */
export const MIGRATIONS: string[] = [
  `
  CREATE TABLE cameras (
    serial        TEXT PRIMARY KEY,
    model         TEXT,
    firmware      TEXT,
    slot          TEXT,
    docked        INTEGER NOT NULL DEFAULT 0,
    first_seen    TEXT NOT NULL,
    last_seen     TEXT NOT NULL,
    docked_at     TEXT,
    clock_skew_s  REAL,
    battery_json  TEXT,
    visit         INTEGER NOT NULL DEFAULT 0
  );

  CREATE TABLE recordings (
    id                  TEXT PRIMARY KEY,
    camera              TEXT NOT NULL REFERENCES cameras(serial),
    source_path         TEXT NOT NULL,
    source_id           TEXT NOT NULL,
    bytes               INTEGER NOT NULL,
    modified_at         TEXT,
    status              TEXT NOT NULL CHECK (status IN ('pending','copying','verified','failed','deleted')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    not_before          INTEGER NOT NULL DEFAULT 0,
    bytes_done          INTEGER NOT NULL DEFAULT 0,
    seen_visit          INTEGER NOT NULL DEFAULT 0,
    sha256              TEXT,
    -- What the archive holds: the ciphertext's hash and size when encrypted at rest, else the same.
    stored_sha256       TEXT,
    stored_bytes        INTEGER,
    archive_path        TEXT,
    deleted_from_camera INTEGER NOT NULL DEFAULT 0,
    discovered_at       TEXT NOT NULL,
    verified_at         TEXT,
    recorded_at         TEXT,
    held                INTEGER NOT NULL DEFAULT 0,
    hold_reason         TEXT,
    deleted_at          TEXT
  );
  CREATE INDEX recordings_by_camera ON recordings(camera, status);
  CREATE INDEX recordings_by_status ON recordings(status);
  -- While a recording is still on the camera its path names it; once it is gone the camera may
  -- reuse the name for new footage, so uniqueness only holds among rows still on the camera.
  CREATE UNIQUE INDEX recordings_on_camera ON recordings(camera, source_path) WHERE deleted_from_camera = 0;

  -- Durable follow-up work on a recording once it is verified (release = delete from camera).
  CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    recording   TEXT NOT NULL REFERENCES recordings(id),
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('queued','done','failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    not_before  INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (recording, kind)
  );
  CREATE INDEX jobs_open ON jobs(kind, state);

  CREATE TABLE battery_samples (
    id             INTEGER PRIMARY KEY,
    camera         TEXT NOT NULL,
    at             INTEGER NOT NULL,
    percent        REAL NOT NULL,
    charging       INTEGER NOT NULL,
    voltage        REAL,
    temperature_c  REAL,
    health_percent REAL,
    cycle_count    INTEGER,
    source         TEXT NOT NULL CHECK (source IN ('dock','device')),
    visit          INTEGER NOT NULL
  );
  CREATE INDEX battery_by_camera ON battery_samples(camera, at);

  CREATE TABLE custody_events (
    seq        INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    type       TEXT NOT NULL,
    camera     TEXT,
    recording  TEXT,
    sha256     TEXT,
    actor      TEXT NOT NULL,
    details    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
  );
  CREATE INDEX custody_by_recording ON custody_events(recording);
  CREATE INDEX custody_by_camera ON custody_events(camera);
  CREATE TRIGGER custody_events_no_update BEFORE UPDATE ON custody_events
    BEGIN SELECT RAISE(ABORT, 'custody events are append-only'); END;
  CREATE TRIGGER custody_events_no_delete BEFORE DELETE ON custody_events
    BEGIN SELECT RAISE(ABORT, 'custody events are append-only'); END;

  -- Signed chain heads. Deliberately not named *custody*: the contract promises exactly one
  -- table with that in its name, the event log itself.
  CREATE TABLE chain_checkpoints (
    seq        INTEGER PRIMARY KEY,
    hash       TEXT NOT NULL,
    at         TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    signature  TEXT NOT NULL
  );

  CREATE TABLE assignments (
    id        INTEGER PRIMARY KEY,
    camera    TEXT NOT NULL,
    officer   TEXT NOT NULL,
    from_at   TEXT NOT NULL,
    to_at     TEXT
  );
  CREATE INDEX assignments_by_camera ON assignments(camera, from_at);

  CREATE TABLE daemon (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    pid           INTEGER NOT NULL,
    started_at    TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL,
    heartbeat_ms  INTEGER NOT NULL,
    stopped_at    TEXT,
    version       TEXT NOT NULL,
    progress_json TEXT
  );
  `,
  `
  -- The battery verdict of the camera's last docking (fleet.ts), so that \`dockd status\` does
  -- not judge every camera from a month of samples each time it is run.
  ALTER TABLE cameras ADD COLUMN battery_verdict_json TEXT;
  `,
  `
  -- Recordings per status, kept by triggers, so that \`dockd status\` reads a handful of rows
  -- instead of counting the status index: on a store of 100,000 recordings that cold scan took
  -- 18 ms of the 200 ms status may take. Nothing deletes or replaces recording rows (retention
  -- marks them 'deleted'); the delete trigger is there so that the counts cannot drift if one ever does.
  CREATE TABLE recording_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
  INSERT INTO recording_counts (status, n) SELECT status, count(*) FROM recordings GROUP BY status;
  CREATE TRIGGER recording_counts_insert AFTER INSERT ON recordings BEGIN
    INSERT INTO recording_counts (status, n) VALUES (NEW.status, 1) ON CONFLICT (status) DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER recording_counts_update AFTER UPDATE OF status ON recordings WHEN OLD.status IS NOT NEW.status BEGIN
    UPDATE recording_counts SET n = n - 1 WHERE status = OLD.status;
    INSERT INTO recording_counts (status, n) VALUES (NEW.status, 1) ON CONFLICT (status) DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER recording_counts_delete AFTER DELETE ON recordings BEGIN
    UPDATE recording_counts SET n = n - 1 WHERE status = OLD.status;
  END;
  `,
  `
  -- What a recording's copy is bound to: the driver's identity of the file (drivers/types.ts,
  -- RecordingEntry.identity). Before dockd deletes a recording from a camera, and after it copied
  -- one, it asks the camera again: other content under the same name is a new recording, never
  -- a reason to delete. NULL on rows stored before; they are bound by size until seen again.
  -- deleted_from_camera now reads: 0 still on the camera, 1 deleted by dockd after verification,
  -- 2 the camera itself no longer holds this content (replaced, or gone before it was verified).
  ALTER TABLE recordings ADD COLUMN source_identity TEXT;
  `,
  `
  -- What each camera reported of its settings at its last docking (after dockd configured it),
  -- the profile it should have, and what still differs from that profile and why.
  CREATE TABLE camera_settings (
    camera         TEXT PRIMARY KEY,
    settings_json  TEXT,
    profile        TEXT,
    pending_json   TEXT NOT NULL DEFAULT '{}',
    configured_at  TEXT,
    reported_at    TEXT NOT NULL
  );
  -- From when (dock clock, ms) a camera ran each profile: battery drain is judged per profile.
  CREATE TABLE camera_profile_history (
    id       INTEGER PRIMARY KEY,
    camera   TEXT NOT NULL,
    at       INTEGER NOT NULL,
    profile  TEXT NOT NULL
  );
  CREATE INDEX camera_profile_history_by_camera ON camera_profile_history(camera, at);
  -- The camera's own event log. A camera hands its ring buffer again at every docking, with the
  -- timestamps the entries were written with: its own timestamp and type identify an entry, and
  -- the true time (dock clock, ms) computed when it was first stored is kept.
  CREATE TABLE camera_events (
    id         INTEGER PRIMARY KEY,
    camera     TEXT NOT NULL,
    at         INTEGER NOT NULL,
    camera_at  INTEGER NOT NULL,
    type       TEXT NOT NULL,
    visit      INTEGER NOT NULL
  );
  CREATE UNIQUE INDEX camera_events_once ON camera_events(camera, camera_at, type);
  CREATE INDEX camera_events_by_time ON camera_events(camera, at);
  -- A device sample's own timestamp on the camera's clock: the same entry handed again after the
  -- camera's clock was set lands tens of seconds from its twin once corrected, but keeps this.
  ALTER TABLE battery_samples ADD COLUMN camera_at INTEGER;
  `,
  `
  -- Which unit each officer belongs to (\`dockd assign --unit\`): the de-escalation statistics can
  -- be grouped by unit, which names nobody, where grouping by officer is opt-in.
  CREATE TABLE officer_units (
    officer  TEXT PRIMARY KEY,
    unit     TEXT NOT NULL,
    since    TEXT NOT NULL
  );
  `,
  `
  -- An officer's units over time: a move to another unit must not carry the officer's past
  -- episodes with it. The unit at a time is the membership with the latest start before it.
  CREATE TABLE unit_memberships (
    id       INTEGER PRIMARY KEY,
    officer  TEXT NOT NULL,
    unit     TEXT NOT NULL,
    from_at  TEXT NOT NULL
  );
  CREATE INDEX unit_memberships_by_officer ON unit_memberships(officer, from_at);
  INSERT INTO unit_memberships (officer, unit, from_at) SELECT officer, unit, since FROM officer_units;
  DROP TABLE officer_units;
  `,
];
