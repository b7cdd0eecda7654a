"""`repurpose watch INBOX`: a watch folder that never loses or double-renders
a file, laid out like Adobe Media Encoder's.

Finished variants go to INBOX/Output (or --out), masters move to
INBOX/Source after success, failures to INBOX/Failed with `<name>.error.txt`.
A file is taken only once complete: its size and mtime unchanged for the
settle time (scan), nobody writing it, a movie with its index (settle). A
SQLite ledger in INBOX/.repurpose remembers every file (ledger), so a restart
re-queues nothing that is done and a crash mid-render puts that file back to
pending. The same content is rendered once; a changed file under the same
name again. Filesystem events (watchdog) wake the loop early; a periodic
rescan catches what events miss (daemon).

Everything in the inbox comes from strangers: links are never followed out
of it (a link, a hard link or media named like a sidecar fails with the
reason: scan), every write is a new file or a rename onto a free name, one
lock keeps a second watcher out, and the folders the watcher writes are its
own, nobody else may write in them (folders). The render reads a private copy
of each master and its sidecars, made through the descriptor its digest was
read from, never the inbox's file by name (stage); links found in Output/
are removed and the manifest names files as the inbox knows them (outbox).
A ledger not of our making is refused (ledger). Names are escaped in every
line (messages), and only faults outside the master are retried (faults).
"""

from pipeline.watch.daemon import Watcher, install_stop
from pipeline.watch.faults import transient
from pipeline.watch.folders import InboxError, check_layout, lock_inbox
from pipeline.watch.ledger import Ledger, LedgerError, retry_failed
from pipeline.watch.messages import log
from pipeline.watch.settle import complete, has_movie_index, open_for_writing

__all__ = ["InboxError", "Ledger", "LedgerError", "Watcher", "check_layout", "complete",
           "has_movie_index", "install_stop", "lock_inbox", "log", "open_for_writing",
           "retry_failed", "transient"]
