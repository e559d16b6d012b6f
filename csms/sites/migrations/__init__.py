"""SQL migrations, applied in order by csms.storage."""
