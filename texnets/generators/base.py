"""What every texnets generator shares: its hyper-parameters are one dataclass (``config``), which is all
a checkpoint records besides the weights, and the round trip between that dataclass and the plain dict
stored in checkpoints (``config_dict`` / ``from_config``)."""
from __future__ import annotations

from dataclasses import asdict

from torch import nn

from texnets.errors import TexnetsError


class Generator(nn.Module):
    """Base of the generators: a plain ``nn.Module`` (no losses, no Lightning) built from a config dataclass.

    A subclass sets the class attributes ``model_type`` (the name checkpoints record) and ``config_class``,
    and calls ``self.config = self.resolve_config(config, overrides)`` first in its ``__init__``. (They are
    not annotated here: TorchScript reads a module's annotations and knows no ``Any`` or ``ClassVar``.)"""

    @classmethod
    def resolve_config(cls, config=None, overrides: dict | None = None):
        """A fresh config: ``config`` with ``overrides`` applied, or the defaults with them, validated by the
        dataclass. Always a new object, so changing a generator's config never changes the caller's.

        Without a ``config`` the overrides go straight to the dataclass, not over a default instance: a
        default can depend on another field (SkipNet's per-level channel lists follow ``levels``)."""
        if config is None:
            return cls.config_class(**(overrides or {}))
        return cls.config_class(**{**asdict(config), **(overrides or {})})

    def config_dict(self) -> dict:
        """The hyper-parameters as plain types, as checkpoints store them (weights_only-loadable)."""
        return asdict(self.config)

    @classmethod
    def from_config(cls, config: dict) -> Generator:
        """Rebuild from ``config_dict()``'s output; an unknown key is one TexnetsError line."""
        try:
            return cls(cls.config_class(**config))
        except TypeError as exc:
            raise TexnetsError(f"unknown {cls.model_type.replace('_', '-')} hyper-parameter: {exc}") from None


__all__ = ["Generator"]
