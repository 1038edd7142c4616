"""``ft.privacy``: data-subject requests, retention, and key rotation."""

from __future__ import annotations

from fittwin_core.domain import Actor
from fittwin_core.domain.keys import PLATFORM_KEY_OWNER
from fittwin_core.ports import UnitOfWork
from fittwin_core.services.base import Context, Service
from fittwin_core.services.permissions import require_staff
from fittwin_core.services.vault import Vault


class Privacy(Service):
    """``ft.privacy``: what FitTwin holds about people, and how it lets go of it."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.vault = Vault(ctx.cipher, ctx.clock)

    def rotate_data_keys(self, *, actor: Actor | None = None) -> int:
        """Re-wrap every data key under the key ring's current key-encryption key; how many
        changed. Sealed rows are untouched; afterwards the old KEK can be retired."""
        acting = actor or Actor.system()
        require_staff(acting, "rotate keys")

        def work(uow: UnitOfWork) -> int:
            changed = self.vault.rotate(uow)
            if changed:
                self.record(uow, "keys.rotate", "data_keys", PLATFORM_KEY_OWNER, {"rewrapped": changed})
            return changed

        return self.transaction(work, actor=acting)


__all__ = ["Privacy"]
