"""The REST API served by every replica."""

from csms.api.app import ApiServices, build_api
from csms.api.presenters import id_tag_json

__all__ = ["ApiServices", "build_api", "id_tag_json"]
