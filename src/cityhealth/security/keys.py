"""`cityhealth keys rotate`: re-encrypt every encrypted column under the current field-encryption key.

Procedure (docs/security.md): make a new key current (CITYHEALTH_FIELD_ENCRYPTION_KEY) and list the old one
in CITYHEALTH_PREVIOUS_FIELD_ENCRYPTION_KEYS, restart the workers (they now write the new key and read
both), then run the rotation; when it reports nothing left, drop the old key. The platform keeps serving:
rows are rewritten in small batches, each its own short transaction, and a row changed by the
application in the meantime (already under the new key) is left alone by a conditional update.

The lookup HMAC key is not rotated here: every equality lookup would break while its hashes change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cityhealth.db.base import Base
from cityhealth.db.engine import Database
from cityhealth.security import repository
from cityhealth.security.crypto import FieldCipher, Purpose

BATCH = 500


@dataclass(frozen=True)
class EncryptedColumn:
    """A column of FieldCipher ciphertexts: its table, key column and the purpose bound into them."""

    table: str
    column: str
    purpose: str
    key: str = "id"

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"


# Security cannot import the registry's models (it sits above), so the registry's columns are named here;
# tables of later rooms declare theirs with `info={"encrypted_purpose": ...}` on the column instead.
KNOWN_COLUMNS = (
    EncryptedColumn("residents", "id_number_enc", Purpose.RESIDENT_ID_NUMBER),
    EncryptedColumn("residents", "phone_enc", Purpose.RESIDENT_PHONE),
    EncryptedColumn("resident_accounts", "phone_enc", Purpose.ACCOUNT_PHONE),
    EncryptedColumn("staff_users", "totp_secret_enc", Purpose.STAFF_TOTP_SECRET),
    EncryptedColumn("staff_users", "totp_pending_enc", Purpose.STAFF_TOTP_SECRET),
)


def encrypted_columns() -> list[EncryptedColumn]:
    """The known columns plus every column declared with `info={"encrypted_purpose": "<purpose>"}`."""
    found = list(KNOWN_COLUMNS)
    labels = {item.label for item in found}
    for table in Base.metadata.sorted_tables:
        primary = [c.name for c in table.primary_key.columns]
        for col in table.columns:
            purpose = col.info.get("encrypted_purpose")
            if purpose and f"{table.name}.{col.name}" not in labels and len(primary) == 1:
                found.append(EncryptedColumn(table.name, col.name, str(purpose), primary[0]))
    return found


async def count_stale(database: Database, cipher: FieldCipher, item: EncryptedColumn) -> int:
    """Rows of `item` still encrypted under an older key."""
    async with database.transaction() as session:
        return await repository.count_stale_ciphertexts(session, table_name=item.table, key=item.key,
                                                        column_name=item.column, current_prefix=cipher.current_prefix)


class UnknownKeyError(Exception):
    """A ciphertext under a key that is neither current nor configured as previous."""


@dataclass
class RotationResult:
    column: str
    rotated: int = 0
    skipped_concurrent: int = 0


async def rotate_column(database: Database, cipher: FieldCipher, item: EncryptedColumn, *,
                        batch: int = BATCH, progress: Callable[[int], None] | None = None) -> RotationResult:
    """Re-encrypt the stale rows of one column, `batch` rows per transaction. Safe to run again."""
    result = RotationResult(item.label)
    last: int | None = None
    while True:
        async with database.transaction() as session:
            rows = await repository.stale_ciphertexts(session, table_name=item.table, key=item.key,
                                                      column_name=item.column, current_prefix=cipher.current_prefix,
                                                      after=last, limit=batch)
            if not rows:
                return result
            for row_id, old in rows:
                try:
                    plain = cipher.decrypt(item.purpose, old)
                except ValueError as exc:
                    raise UnknownKeyError(f"{item.label} row {row_id}: {exc}") from exc
                if await repository.replace_ciphertext(session, table_name=item.table, key=item.key,
                                                       column_name=item.column, row_id=row_id, old=old,
                                                       new=cipher.encrypt(item.purpose, plain)):
                    result.rotated += 1
                else:  # the application rewrote it meanwhile, under the current key already
                    result.skipped_concurrent += 1
            last = rows[-1][0]
        if progress is not None:
            progress(len(rows))
