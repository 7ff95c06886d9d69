"""Product CSV files as shops really have them, read and written in one place.

Reading is forgiving: UTF-8 with or without a BOM (a clear refusal for other encodings),
`,` `;` or tab found by csv.Sniffer on the header line, Excel quoting (and Excel's
`="0123"` for text that must keep its leading zeros), header names in any case and spacing
with the usual aliases. Writing produces the file reading accepts unchanged (the export).
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from .errors import InvalidInput

# Field -> the header names that mean it, best first (the first one present is used).
ALIASES = {
    "sku": ("sku", "itemcode", "item", "itemnumber", "itemno", "productcode", "productsku"),
    "name": ("name", "productname", "itemname", "title", "description"),
    "price": ("price", "unitprice", "retailprice", "saleprice"),
    "barcode": ("barcode", "gtin", "ean", "upc", "ean13", "upca"),
    "category": ("category", "department", "dept"),
    "supplier": ("supplier", "vendor"),
    "on_hand": ("onhand", "qtyonhand", "stockonhand", "qty", "quantity", "stock"),
    "low_stock_threshold": ("threshold", "lowstockthreshold", "reorderpoint", "reorderlevel",
                            "minstock"),
    "is_active": ("active", "isactive", "enabled", "status"),
    # Where a new product's opening on-hand lands (a location's code); blank: the default.
    "location": ("location", "locationcode"),
}
# Columns of our own export that the import reads past without a note.
EXPORT_ONLY = ("reserved", "available")
# Blank cells of these leave the stored value as it is (or the default, for a new product);
# blank cells of the others clear the field.
KEEP_WHEN_BLANK = ("name", "price", "is_active", "low_stock_threshold", "on_hand", "location")
EXPORT_HEADER = ["SKU", "Name", "Price", "Barcode", "Category", "Supplier", "On hand",
                 "Reserved", "Available", "Threshold", "Active"]
_EXCEL_TEXT = re.compile(r'^="(.*)"$', re.S)


@dataclass
class ParsedFile:
    columns: dict[str, str]  # field -> the header it was read from
    rows: list[tuple[int, dict]] = field(default_factory=list)  # (spreadsheet row, values)
    bad_rows: list[tuple[int, str, str]] = field(default_factory=list)  # (row, sku, message)
    notes: list[str] = field(default_factory=list)
    delimiter: str = ","


def decode(data: bytes) -> str:
    """The file's text: UTF-8, with or without a BOM; anything else is refused clearly."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidInput("the file is UTF-16 text; save it as “CSV UTF-8” and upload again",
                           field="file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInput(
            f"the file is not UTF-8 text (byte {error.start + 1} is not UTF-8; it may be"
            " Windows-1252 or Latin-1): save it as “CSV UTF-8” and upload again",
            field="file") from None
    if "\x00" in text:
        raise InvalidInput("the file contains NUL bytes: it is not a CSV text file", field="file")
    return text


def _key(header: str) -> str:
    return re.sub(r"[^0-9a-z]", "", header.lower())


def _delimiter(header_line: str) -> str:
    try:
        return csv.Sniffer().sniff(header_line, delimiters=",;\t").delimiter
    except csv.Error:  # one column, or nothing to tell them apart: count instead
        return max(",;\t", key=header_line.count)


def _columns(header: list[str], notes: list[str]) -> dict[str, int]:
    keys = [_key(h) for h in header]
    found: dict[str, int] = {}
    for name, aliases in ALIASES.items():
        present = [keys.index(a) for a in aliases if a in keys]
        if present:
            found[name] = present[0]
            for other in present[1:]:
                notes.append(f"column “{header[other]}” ignored: “{header[present[0]]}” is"
                             f" used for {name.replace('_', ' ')}")
    used = set(found.values())
    unknown = [h for i, h in enumerate(header)
               if i not in used and keys[i] and keys[i] not in EXPORT_ONLY
               and not any(keys[i] in a for a in ALIASES.values())]
    if unknown:
        notes.append("columns ignored: " + ", ".join(f"“{h}”" for h in unknown))
    if "sku" not in found:
        raise InvalidInput("no SKU column: the header needs one of SKU, Item, Item code"
                           f" (found: {', '.join(h for h in header if h) or 'nothing'})",
                           field="file")
    return found


def _cell(value: str) -> str:
    value = value.strip()
    match = _EXCEL_TEXT.match(value) if value.startswith("=") else None
    return match.group(1).strip() if match else value


def parse(text: str) -> ParsedFile:
    """Rows of a product CSV as raw values for services.catalogue.clean."""
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), "")
    if not header_line:
        raise InvalidInput("the file is empty", field="file")
    delimiter = _delimiter(header_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] = []
    for header in reader:
        if any(c.strip() for c in header):
            break
    notes: list[str] = []
    index = _columns([h.strip() for h in header], notes)
    parsed = ParsedFile({f: header[i].strip() for f, i in index.items()}, notes=notes,
                        delimiter=delimiter)
    width = len(header)
    row_number = 1
    try:
        for cells in reader:
            row_number += 1
            if not any(c.strip() for c in cells):
                continue
            sku = _cell(cells[index["sku"]]) if index["sku"] < len(cells) else ""
            if len(cells) > width and any(c.strip() for c in cells[width:]):
                parsed.bad_rows.append((row_number, sku, f"the row has {len(cells)} cells but the"
                                        f" header has {width} (a stray {delimiter!r}?)"))
                continue
            raw = {}
            for name, i in index.items():
                value = _cell(cells[i]) if i < len(cells) else ""
                if value or name not in KEEP_WHEN_BLANK:
                    raw[name] = value
            parsed.rows.append((row_number, raw))
    except csv.Error as error:
        raise InvalidInput(f"row {row_number + 1} cannot be read as CSV ({error})",
                           field="file") from None
    if not parsed.rows and not parsed.bad_rows:
        raise InvalidInput("the file has a header but no rows", field="file")
    return parsed


def write(products, out) -> None:
    """The export: every product with its stock figures, in the shape `parse` reads back."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    for p in products:
        writer.writerow([p.sku, p.name, f"{p.price:.2f}", p.barcode or "", p.category or "",
                         p.supplier or "", p.on_hand, p.reserved, p.available,
                         p.low_stock_threshold, "yes" if p.is_active else "no"])
