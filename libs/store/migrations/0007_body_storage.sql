-- Bodies are stored as they are, not compressed: most of their bytes are a PDF, a ZIP or base64 text of them, which
-- PostgreSQL's pglz compresses by a quarter at best, for CPU time on every write (measured: the largest part of the
-- server's CPU per result at intake and routing). Disk is cheaper than the cores the intake shares.
alter table bodies alter column content set storage external;
alter table mails alter column head set storage external;
