"""Id tags (RFID cards, app tokens): status, expiry and parent id tag; answers Authorize with an idTagInfo."""

from csms.authorization.id_tags import MIGRATIONS, STATUSES, IdTag, IdTagStore

__all__ = ["MIGRATIONS", "STATUSES", "IdTag", "IdTagStore"]
