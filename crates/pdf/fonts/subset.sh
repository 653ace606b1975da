#!/bin/sh
# Makes DroidSansFallback-GB2312.ttf, the font `pdf` embeds for Chinese text, from Debian's
# fonts-droid-fallback (Apache-2.0; its licence is LICENSE-DroidSansFallback.txt beside this
# script). Run it again only to change the character set; the result is committed, so nothing
# is downloaded when easypos is built or run.
#
#   apt-get install fonts-droid-fallback python3-fonttools
#   crates/pdf/fonts/subset.sh
#
# The subset: every GB2312 character the font has (the 6763 hanzi of levels 1 and 2, and its
# punctuation and symbols), the CJK symbols and punctuation block (U+3000..303F, which holds
# U+3013 GETA MARK, the mark `pdf` draws for a character the font lacks), and the fullwidth
# forms (U+FF01..FF5E). Hinting, layout and vertical tables are dropped: a receipt needs none.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
source_font=${SOURCE_FONT:-/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf}
python=/usr/bin/python3
unicodes=$(mktemp)
trap 'rm -f "$unicodes"' EXIT
"$python" - "$unicodes" <<'PY'
import sys
codes = set(range(0x3000, 0x3040)) | set(range(0xFF01, 0xFF5F))
for high in range(0xA1, 0xF8):
    for low in range(0xA1, 0xFF):
        try:
            codes.add(ord(bytes([high, low]).decode("gb2312")))
        except UnicodeDecodeError:
            pass
with open(sys.argv[1], "w") as out:
    out.write("\n".join(f"U+{code:04X}" for code in sorted(codes)))
PY
"$python" -m fontTools.subset "$source_font" \
    --unicodes-file="$unicodes" \
    --output-file="$here/DroidSansFallback-GB2312.ttf" \
    --no-hinting --layout-features='' \
    --drop-tables+=GDEF,GSUB,GPOS,vhea,vmtx,gasp,DSIG \
    --name-IDs='*' --name-languages='*' --notdef-outline --no-recalc-timestamp
ls -l "$here/DroidSansFallback-GB2312.ttf"
