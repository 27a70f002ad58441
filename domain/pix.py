"""Pix "copia e cola" payloads: the EMV BR Code of the Central Bank's manual, with its CRC16 check.

Each field is TLV: a two-digit id, a two-digit length, the value. The last field (63) is the CRC16-CCITT-FALSE
(polynomial 0x1021, initial value 0xFFFF) of the whole payload up to and including "6304".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from unidecode import unidecode

PIX_GUI = "br.gov.bcb.pix"


def crc16_ccitt_false(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _tlv(tag: str, value: str) -> str:
    if len(value) > 99:
        raise ValueError(f"field {tag} is longer than 99 characters")
    return f"{tag}{len(value):02d}{value}"


def _ascii(text: str, limit: int) -> str:
    # Bank apps render these fields on receipts; the manual restricts them to plain characters.
    return re.sub(r"[^A-Za-z0-9 .\-]", "", unidecode(text)).strip()[:limit] or "NA"


@dataclass(frozen=True)
class PixCharge:
    key: str
    merchant_name: str
    merchant_city: str
    amount: Decimal | None = None
    txid: str = "***"
    description: str | None = None


def build_br_code(charge: PixCharge) -> str:
    """A static-key BR Code ready to be pasted into any bank app's "Pix copia e cola"."""
    account = _tlv("00", PIX_GUI) + _tlv("01", charge.key)
    if charge.description:
        account += _tlv("02", _ascii(charge.description, 40))
    txid = charge.txid if charge.txid == "***" else re.sub(r"[^A-Za-z0-9]", "", charge.txid)[:25]
    payload = (
        _tlv("00", "01")
        + _tlv("26", account)
        + _tlv("52", "0000")
        + _tlv("53", "986")
        + (_tlv("54", f"{charge.amount:.2f}") if charge.amount is not None else "")
        + _tlv("58", "BR")
        + _tlv("59", _ascii(charge.merchant_name, 25))
        + _tlv("60", _ascii(charge.merchant_city, 15))
        + _tlv("62", _tlv("05", txid or "***"))
        + "6304"
    )
    return payload + f"{crc16_ccitt_false(payload.encode('utf-8')):04X}"


class InvalidBRCode(ValueError):
    pass


def parse_tlv(payload: str) -> dict[str, str]:
    """Splits one level of TLV fields; raises InvalidBRCode on a truncated field."""
    fields: dict[str, str] = {}
    i = 0
    while i < len(payload):
        if i + 4 > len(payload) or not payload[i + 2 : i + 4].isdigit():
            raise InvalidBRCode(f"truncated field at offset {i}")
        tag, length = payload[i : i + 2], int(payload[i + 2 : i + 4])
        value = payload[i + 4 : i + 4 + length]
        if len(value) != length:
            raise InvalidBRCode(f"field {tag} is shorter than its length {length}")
        fields[tag] = value
        i += 4 + length
    return fields


def decode_br_code(payload: str) -> dict[str, str]:
    """Checks the CRC and returns the fields, with the Pix account template's sub-fields as "26.00", "26.01"…"""
    if len(payload) < 8 or payload[-8:-4] != "6304":
        raise InvalidBRCode("the payload does not end with the CRC field 6304")
    expected = f"{crc16_ccitt_false(payload[:-4].encode('utf-8')):04X}"
    if payload[-4:].upper() != expected:
        raise InvalidBRCode(f"CRC mismatch: {payload[-4:]} != {expected}")
    fields = parse_tlv(payload)
    for template in ("26", "62"):
        for sub_tag, sub_value in parse_tlv(fields.get(template, "")).items():
            fields[f"{template}.{sub_tag}"] = sub_value
    return fields
