"""The scheduled runs, expiry and reminders (SPEC §6, §7; docs/design.md, "Scheduled runs").

    scheduled function ── start_run ──▶ SQS (members in batches) ──▶ worker ── process_message
       (fanout.py)        pages ByNextExpiry, shard by shard          (worker.py)  per member (jobs.py)

`handlers.py` holds the Lambda entry points the functions under `functions/expiry` and
`functions/reminders` expose; `store/runs.py` keeps each run's progress and figures.
"""
