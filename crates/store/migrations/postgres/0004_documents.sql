-- Documents sent to patients (issue 5). The PDF itself lives outside the database, encrypted
-- (AES-256-GCM) in one file per document named by a random id; this row says where it is, the
-- nonce it was sealed with, and its size and SHA-256 for audit.
CREATE TABLE document_files (
    practice_id TEXT NOT NULL,
    document_id TEXT NOT NULL,
    path TEXT NOT NULL,
    nonce TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (practice_id, document_id)
);

-- The patient's links to a document. Only the SHA-256 of the token is kept: the token itself
-- exists in the email alone. Wrong birth dates are counted here, so a lock holds across nodes.
CREATE TABLE document_links (
    practice_id TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    document_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    consulted_at BIGINT,
    PRIMARY KEY (practice_id, token_hash)
);

-- A patient opens `/d/{token}` with no practice in the URL: like notifications_provider, this
-- index is not led by practice_id. Tokens are 256 random bits, so it is unique and selective.
CREATE UNIQUE INDEX document_links_token ON document_links (token_hash);
CREATE INDEX document_links_document ON document_links (practice_id, document_id);
