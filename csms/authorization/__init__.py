"""Id tags (RFID cards, app tokens): status, expiry and parent id tag; answers Authorize with an idTagInfo."""

from csms.authorization.id_tags import MIGRATIONS, STATUSES, TOKEN_TYPES, IdTag, IdTagStore

__all__ = ["MIGRATIONS", "STATUSES", "TOKEN_TYPES", "IdTag", "IdTagStore"]
