-- Several daemon nodes on one database (see host/src/store/cluster.rs).
--
-- Nodes say they are alive with a heartbeat; each agent runs where its lease is.
-- A lease is a row with a fencing token (from one sequence, so a key's tokens only
-- grow) and an expiry on the database's clock. Every commit of an agent checks,
-- in its own transaction and under a share lock of the row, that its node still
-- holds the token it started with and that it has not expired: a node that lost
-- its lease (expired while it was paused or cut off, taken over, revoked by a
-- lifecycle change through another node) can never commit.

CREATE TABLE nodes (
    node_id      TEXT        PRIMARY KEY,
    -- A random id per process: a second process under a live node's id is refused.
    instance     TEXT        NOT NULL,
    addr         TEXT,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

CREATE SEQUENCE lease_tokens;

CREATE TABLE leases (
    name       TEXT        NOT NULL,
    version    BIGINT      NOT NULL,
    node_id    TEXT        NOT NULL,
    token      BIGINT      NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX leases_by_node ON leases (node_id);

-- The wasm of every deployed component, by hash: a node that did not take the
-- deploy loads it from here (and caches the compiled artifact on its own disk).
CREATE TABLE component_code (
    sha256     TEXT   PRIMARY KEY,
    wasm       BYTEA  NOT NULL,
    created_at BIGINT NOT NULL
);

-- Opt-in audit (`[cluster] audit_commits`): the node and token of every agent
-- commit, for tests and investigations; never read by the daemon.
CREATE TABLE lease_commits (
    name         TEXT        NOT NULL,
    version      BIGINT      NOT NULL,
    node_id      TEXT        NOT NULL,
    token        BIGINT      NOT NULL,
    position     BIGINT      NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- The node delivering an outbox message: other nodes skip it while that node is
-- alive (its heartbeat within a lease's life), and retry it once it is not.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
