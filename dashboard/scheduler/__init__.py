"""The scheduler process (SPEC §8): APScheduler firing the jobs of `services.jobs` on
aligned slots (`runner`), and its commands (`cli`). Nothing else imports this package."""
