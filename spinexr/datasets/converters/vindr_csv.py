"""Read and validate a VinDr-SpineXR annotation CSV (``SRC/annotations/<split>.csv``).

Every value that later becomes part of a path is checked here: an ``image_id`` names the files
``SRC/<split>_images/<image_id>.dicom`` and ``DST/<split>/<image_id>.png``, so it must be a plain
file name (:func:`file_name_problem`); otherwise a path such as ``../x`` or ``/etc/x`` would read
or write outside the release and output folders. ``study_id`` and ``series_id`` are never used in
a path (only copied into the COCO file), and ``rad_id`` / ``lesion_type`` neither.

Problems are collected, never raised: each names the file, the CSV line (line 1 is the header),
the value and the reason. A problem of a row marks its image as bad (the converter then leaves
the image out, see :mod:`spinexr.datasets.converters.vindr_spinexr`); a fatal problem means the
whole file cannot be used (missing column, not UTF-8, malformed CSV).
"""
import csv
import io
import math
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from spinexr.datasets.metainfo import CLASSES, CSV_COLUMNS, NO_FINDING

#: Longest accepted file name stem (``<stem>.dicom`` must stay under the usual 255-byte limit).
MAX_NAME_LENGTH = 200
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + '._-')
_PLAIN_NAME = re.compile(r'[A-Za-z0-9_-][A-Za-z0-9._-]{0,%d}' % (MAX_NAME_LENGTH - 1))


def file_name_problem(value: str) -> Optional[str]:
    """Why ``value`` cannot be used as a file name stem, or ``None`` when it can.

    A plain name is 1 to ``MAX_NAME_LENGTH`` ASCII letters, digits, ``.``, ``_`` or ``-`` and does
    not start with ``.`` (so no separator, no absolute or drive path, no ``.``/``..``, no hidden
    file, no control or non-ASCII character). The release's ids are 32 hex digits.

    Args:
        value (str): The candidate name (without extension).

    Returns:
        str | None: The reason it is refused, or ``None``.
    """
    if _PLAIN_NAME.fullmatch(value):  # the common case, decided in one step
        return None
    if value == '':
        return 'it is empty'
    if value.startswith(('/', '\\')) or (len(value) > 1 and value[1] == ':'
                                         and value[0] in string.ascii_letters):
        return 'it is an absolute or drive path'
    if '/' in value or '\\' in value:
        return 'it contains a path separator'
    if value in ('.', '..'):
        return 'it names a directory'
    if value.startswith('.'):
        return "it starts with '.'"
    if len(value) > MAX_NAME_LENGTH:
        return f'it is longer than {MAX_NAME_LENGTH} characters ({len(value)})'
    bad = sorted({c for c in value if c not in _NAME_CHARS})
    if bad:
        shown = ''.join(bad)
        return (f'it contains {shown!r} (allowed: ASCII letters, digits, '
                "'.', '_', '-')")
    return None


def shown_id(value: str) -> str:
    """``value`` as is when it is a plain name, else its ``repr`` (safe to print to a terminal)."""
    return value if file_name_problem(value) is None else repr(value)


@dataclass
class Problem:
    """One bad input: where it is and what is wrong."""
    split: str
    file: str
    reason: str
    row: Optional[int] = None
    image_id: Optional[str] = None
    fatal: bool = False

    def __str__(self) -> str:
        where = self.file + (f':{self.row}' if self.row is not None else '')
        img = f' [image {shown_id(self.image_id)}]' if self.image_id else ''
        return f'{where}{img}: {self.reason}'


@dataclass
class ImageEntry:
    """Annotations of one image gathered from the CSV (boxes in original DICOM pixels)."""
    image_id: str
    study_id: str
    series_id: str
    first_row: int
    boxes: List[Tuple[int, float, float, float, float, str]] = field(default_factory=list)
    abnormal: bool = False


def _decode(data: bytes) -> Tuple[Optional[str], Optional[Tuple[str, int]]]:
    """UTF-8 text of ``data`` (a leading BOM removed), or ``(None, (reason, line))``."""
    bom = b'\xef\xbb\xbf'
    skip = len(bom) if data.startswith(bom) else 0
    try:
        return data[skip:].decode('utf-8'), None
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        line = data.count(b'\n', 0, offset) + 1
        return None, (f'not UTF-8 text: byte 0x{data[offset]:02x} at byte offset {offset} '
                      f'(line {line}) cannot be decoded ({exc.reason}); save the CSV as UTF-8',
                      line)


def _parse_box(row: dict, lesion: str) -> Tuple[Optional[List[float]], Optional[str]]:
    """``[xmin, ymin, xmax, ymax]`` of a lesion row, or ``(None, reason)``."""
    coords = [row[k] for k in ('xmin', 'ymin', 'xmax', 'ymax')]
    try:
        values = [float(v) for v in coords]
        if not all(math.isfinite(v) for v in values):
            raise ValueError
    except (TypeError, ValueError):
        return None, (f'{lesion!r} box with missing or invalid coordinates '
                      f'(xmin, ymin, xmax, ymax) = {tuple(coords)}')
    x1, y1, x2, y2 = values
    inverted = [f'{b} {vb:g} < {a} {va:g}' for a, va, b, vb in
                (('xmin', x1, 'xmax', x2), ('ymin', y1, 'ymax', y2)) if vb < va]
    if inverted:
        return None, f'{lesion!r} inverted box: ' + ', '.join(inverted)
    return values, None


def read_split_csv(csv_path: Path, split: str) -> Tuple[Dict[str, ImageEntry], List[Problem]]:
    """Parse and validate one annotation CSV.

    Args:
        csv_path (Path): ``SRC/annotations/<split>.csv``.
        split (str): Split name (for messages).

    Returns:
        tuple[dict[str, ImageEntry], list[Problem]]: Images in CSV order (an image whose id is
        refused is listed too, and its id is in a problem), and the problems found (a fatal
        problem means the file could not be read at all).
    """
    problems: List[Problem] = []
    entries: Dict[str, ImageEntry] = {}
    name = str(csv_path)
    if not csv_path.is_file():
        return entries, [Problem(split, name, 'annotation CSV not found', fatal=True)]
    text, undecodable = _decode(csv_path.read_bytes())
    if undecodable is not None:
        return entries, [Problem(split, name, undecodable[0], row=undecodable[1], fatal=True)]
    reader = csv.DictReader(io.StringIO(text, newline=''))
    try:
        header = reader.fieldnames or []
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing:
            unexpected = [c for c in header if c not in CSV_COLUMNS]
            reason = (f'missing column(s) {missing}' +
                      (f', unexpected column(s) {unexpected}' if unexpected else '') +
                      f'; expected exactly {list(CSV_COLUMNS)}')
            return {}, [Problem(split, name, reason, row=1, fatal=True)]
        for row in reader:
            _read_row(row, reader.line_num, split, name, entries, problems)
    except csv.Error as exc:  # DictReader.line_num lags one record behind on an error
        return {}, [Problem(split, name, f'malformed CSV: {exc}', row=reader.reader.line_num,
                            fatal=True)]
    return entries, problems


def _read_row(row: dict, line: int, split: str, name: str, entries: Dict[str, ImageEntry],
              problems: List[Problem]) -> None:
    """Add one CSV row to ``entries``, or a problem to ``problems``."""
    raw = row['image_id'] or ''
    image_id = raw.strip()
    why = file_name_problem(image_id)
    if why is not None:
        problems.append(Problem(
            split, name, f'image_id {raw!r} refused: not a plain file name ({why})', row=line,
            image_id=image_id or None))
    entry = entries.get(image_id)
    if entry is None and image_id:
        entry = entries[image_id] = ImageEntry(
            image_id=image_id, study_id=(row['study_id'] or '').strip(),
            series_id=(row['series_id'] or '').strip(), first_row=line)
    lesion = row['lesion_type']
    if why is not None or lesion == NO_FINDING:
        return
    if lesion not in CLASSES:
        problems.append(Problem(
            split, name, f'unknown lesion_type {lesion!r} (expected one of '
            f'{list(CLASSES) + [NO_FINDING]})', row=line, image_id=image_id))
        return
    values, reason = _parse_box(row, lesion)
    if reason is not None:
        problems.append(Problem(split, name, reason, row=line, image_id=image_id))
        return
    entry.abnormal = True
    entry.boxes.append((CLASSES.index(lesion), *values, (row['rad_id'] or '').strip()))
