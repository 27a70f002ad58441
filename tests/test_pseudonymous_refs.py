"""Citizens a channel knows by phone are named by a keyed pseudonym, and migration 0016 converts the old refs."""

from __future__ import annotations

from sqlalchemy import text

from core.db import make_engine
from core.lgpd.crypto import FieldCipher, generate_key
from core.lgpd.refs import is_phone_ref, phone_ref, pseudonymous_ref
from core.migrate import downgrade, upgrade

CIPHER = FieldCipher([generate_key()], b"refs-index-key-0123456789")
PHONE = "5519998765432"


def test_a_phone_ref_is_a_keyed_pseudonym_whatever_the_spelling() -> None:
    ref = phone_ref(CIPHER, "whatsapp", PHONE)

    assert ref.startswith("whatsapp:tel.")
    assert len(ref) == len("whatsapp:tel.") + 32
    assert PHONE not in ref
    assert pseudonymous_ref(CIPHER, f"whatsapp:+{PHONE}") == pseudonymous_ref(CIPHER, f"whatsapp:{PHONE}") == ref
    assert phone_ref(FieldCipher([generate_key()], b"another-index-key-0000000"), "whatsapp", PHONE) != ref
    assert [is_phone_ref(r) for r in ("whatsapp:BR.00000000000000000001", "citizen:42", ref)] == [False] * 3
    assert pseudonymous_ref(CIPHER, "whatsapp:BR.00000000000000000001") == "whatsapp:BR.00000000000000000001"


def test_migration_0016_pseudonymises_the_phone_refs_already_stored(database_url: str) -> None:
    upgrade(database_url, "0012")
    engine = make_engine(database_url)
    clear = f"whatsapp:{PHONE}"
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO conversations (id, channel, language, state, citizen_ref, created_at, updated_at) "
                    "VALUES ('c1', 'whatsapp', 'pt-BR', 'bot', :ref, :now, :now), "
                    "('c2', 'whatsapp', 'pt-BR', 'bot', 'whatsapp:BR.00000000000000000001', :now, :now)"
                ),
                {"ref": clear, "now": "2026-12-01 10:00:00"},
            )
            connection.execute(
                text(
                    "INSERT INTO wa_contacts (phone_number_id, citizen_ref, wa_id, created_at, updated_at) "
                    "VALUES ('1122', :ref, :phone, :now, :now)"
                ),
                {"ref": clear, "phone": PHONE, "now": "2026-12-01 10:00:00"},
            )
            connection.execute(
                text(
                    "INSERT INTO consent_records (citizen_ref, channel, purpose, status, source, actor, recorded_at) "
                    "VALUES (:ref, 'whatsapp', '*', 'opt_out', 'whatsapp:keyword SAIR', :ref, :now)"
                ),
                {"ref": clear, "now": "2026-12-01 10:00:00"},
            )
        upgrade(database_url, cipher=CIPHER)
        with engine.connect() as connection:
            refs = {
                table: sorted(connection.execute(text(f"SELECT citizen_ref FROM {table}")).scalars())
                for table in ("conversations", "wa_contacts", "consent_records")
            }
            actors = connection.execute(text("SELECT actor FROM consent_records")).scalars().all()
            columns = connection.execute(text("SELECT access_code_hash FROM protocols")).all()
        pseudonym = phone_ref(CIPHER, "whatsapp", PHONE)
        assert refs == {
            "conversations": sorted([pseudonym, "whatsapp:BR.00000000000000000001"]),
            "wa_contacts": [pseudonym],
            "consent_records": [pseudonym],
        }
        assert actors == [pseudonym]
        assert columns == []
        downgrade(database_url, "0012", cipher=CIPHER)
        upgrade(database_url, cipher=CIPHER)
    finally:
        engine.dispose()
