"""The REST API served by every replica."""

from csms.api.app import ApiServices, build_api

__all__ = ["ApiServices", "build_api"]
