"""Data validation: Great Expectations suites per metric family, the quarantine, Data Docs and the gates before every decision.

- ``expectations``: the named expectations (one business rule each) and how breaking them is handled;
- ``suites``: the suites and :func:`~include.headroom.validation.suites.validate_batch`;
- ``results``: per (batch, service) results, and storing a validated batch;
- ``quarantine``: list, show and re-admit quarantined rows after a fix;
- ``gates``: per service, the reason a decision must not act (failed validation, stale data), audited;
- ``docs``: GX Data Docs under the reports directory; ``csv_batch``: a CSV batch read line by line.

Great Expectations is imported only when a batch is validated (about 4 s), never on import.
"""
