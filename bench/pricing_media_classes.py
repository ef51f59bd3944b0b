"""Benchmark: does pricing audio tokens, images and audio seconds (issue #5) slow the generated
CASE? The same bounded job as pricing_strategies.py (datagen -> price -> blackhole, a text-only
workload) with the shipped catalog, and with the shipped catalog minus its three audio/image
entries (then the five media price columns are constants, as before issue #5).

    python bench/pricing_media_classes.py 500000      # rows per variant; two rounds
"""
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import pricing_strategies as ps  # noqa: E402


def variant(name, rows):
    from tokenpulse.schemas.pricing import PriceTable, load_price_table
    shipped = load_price_table()
    if name == "text-only":  # the catalog before issue #5's entries: 4 price CASEs
        ps.catalog = lambda n: PriceTable(currency="USD", prices=tuple(
            p for p in shipped.prices if p.model not in ("gpt-4o-audio-preview", "whisper-1", "imagen-4.0-generate-001")))
    return ps.run_variant("case-shipped" if name != "no-pricing" else "no-pricing", rows)

if __name__ == "__main__":
    if len(sys.argv) > 2:
        print(json.dumps({"v": sys.argv[1], "s": variant(sys.argv[1], int(sys.argv[2]))}))
    else:
        rows = int(sys.argv[1])
        for rnd in range(2):
            for v in ("no-pricing", "text-only", "with-media"):
                out = subprocess.run([sys.executable, __file__, v, str(rows)], capture_output=True, text=True,
                                     cwd=str(Path(__file__).resolve().parents[1]), timeout=900)
                line = [l for l in out.stdout.splitlines() if l.startswith("{")]
                r = json.loads(line[-1]) if line else {"v": v, "err": out.stderr[-300:]}
                if "s" in r:
                    r["rows_per_s"] = round(rows / r["s"])
                print(rnd, r, flush=True)
